//! The same questions in PostGIS: the benchmark database gets geography
//! columns (`geog`, the exact point; `pub_geog`, the public place anpi
//! matches from) and GiST indexes on them — added here, not in anpi's
//! migrations — and these queries.
//!
//! Distances are on the sphere (`use_spheroid => false`, and `<->` on
//! geography), as anpi's haversine: PostGIS's sphere has the same mean
//! radius, so the two agree to a fraction of a millimetre.

/// The columns and indexes the benchmark adds, before the data is loaded.
pub const ADD_COLUMNS: [&str; 2] = [
    "alter table aid_request add column geog geography(Point, 4326), add column pub_geog geography(Point, 4326)",
    "alter table aid_offer add column geog geography(Point, 4326), add column pub_geog geography(Point, 4326)",
];

/// After the load: (what, statement).
pub const INDEXES: [(&str, &str); 4] = [
    (
        "requests, public place",
        "create index aid_request_pub_geog on aid_request using gist (pub_geog)",
    ),
    (
        "offers, public place",
        "create index aid_offer_pub_geog on aid_offer using gist (pub_geog)",
    ),
    (
        "requests, exact point",
        "create index aid_request_geog on aid_request using gist (geog)",
    ),
    (
        "offers, exact point",
        "create index aid_offer_geog on aid_offer using gist (geog)",
    ),
];

/// Nearest 20 requests a volunteer can claim within `$3` metres of
/// (`$1` lon, `$2` lat), nearest first: (id, metres). KNN on the GiST index.
macro_rules! nearest_sql {
    ($geog:literal) => {
        concat!(
            "select id, ST_Distance(",
            $geog,
            ", ST_MakePoint($1, $2)::geography, false) from aid_request \
             where status in ('open', 'partially_claimed') and hidden = false \
             and ST_DWithin(",
            $geog,
            ", ST_MakePoint($1, $2)::geography, $3, false) \
             order by ",
            $geog,
            " <-> ST_MakePoint($1, $2)::geography limit 20"
        )
    };
}

/// From the public places: the question anpi answers.
pub const NEAREST: &str = nearest_sql!("pub_geog");
/// From the exact points: what the answer would be without the privacy blur.
pub const NEAREST_EXACT: &str = nearest_sql!("geog");

/// Category fit of an offer's category to a request's (columns or
/// values): 1 the same, 0.25 with `other` on either side, null no match.
macro_rules! fit_sql {
    ($offer:literal, $request:literal) => {
        concat!(
            "(case when ",
            $offer,
            " = ",
            $request,
            " then 1::float8 when ",
            $offer,
            " = 'other' or ",
            $request,
            " = 'other' then 0.25::float8 end)"
        )
    };
}

/// Which pairs are matches at all: a category fit, within the offer's
/// reach, something left to give.
macro_rules! matches_sql {
    () => {
        "fit is not null and d <= reach_m and remaining > 0"
    };
}

/// docs/aid.md's score, over a row with `fit` (1 same category, 0.25
/// `other` on either side), `d` and `reach_m` (metres), `offered`,
/// `remaining` (units), `urgency` (its code) and `age_hours`.
macro_rules! score_sql {
    () => {
        "(0.4::float8 * fit \
         + 0.25::float8 * (case when reach_m > 0 then 1 - d / reach_m else 1 end) \
         + 0.15::float8 * least(offered, remaining)::float8 / remaining::float8 \
         + 0.1::float8 * (case urgency when 'low' then 0.25::float8 when 'normal' then 0.5::float8 \
                          when 'high' then 0.75::float8 else 1::float8 end) \
         + 0.1::float8 * least(greatest(age_hours / 24, 0), 1))"
    };
}
#[cfg(test)]
pub(crate) use {fit_sql, matches_sql, score_sql};

/// The 10 open offers that fit request `$1` best at time `$2`: within
/// their own reach (`$3`, the longest reach of any offer, only narrows the
/// index search), available then, fitting in category; ranked by the score,
/// ties to the nearer: (id, score, metres).
macro_rules! offers_for_sql {
    ($geog:literal) => {
        concat!(
            "with r as (select ",
            $geog,
            " as g, category, quantity - claimed as remaining, urgency, \
               trunc(extract(epoch from ($2 - created_at)))::float8 / 3600 as age_hours \
               from aid_request where id = $1 and hidden = false \
               and status in ('open', 'partially_claimed', 'claimed')), \
             m as (select o.id, ST_Distance(o.",
            $geog,
            ", r.g, false) as d, o.reach_m, o.quantity as offered, r.remaining, r.urgency, r.age_hours, \
               ",
            fit_sql!("o.category", "r.category"),
            " as fit \
               from r join aid_offer o on ST_DWithin(o.",
            $geog,
            ", r.g, $3, false) \
               where o.status = 'open' and o.hidden = false \
               and (o.available_until is null or o.available_until > $2)) \
             select id, ",
            score_sql!(),
            " as score, d from m where ",
            matches_sql!(),
            " order by score desc, d limit 10"
        )
    };
}

pub const OFFERS_FOR: &str = offers_for_sql!("pub_geog");
pub const OFFERS_FOR_EXACT: &str = offers_for_sql!("geog");

#[cfg(test)]
mod tests {
    use anpi::domain::aid::{Category, Pairing, Urgency, match_score};
    use sqlx::Connection;

    /// The SQL score is docs/aid.md's, as anpi computes it: checked on
    /// PostgreSQL itself (no PostGIS needed: the distance is an input).
    #[tokio::test]
    async fn the_sql_score_is_anpis() {
        let url = std::env::var("ANPI_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required at {url} (ops/test starts one): {e}")
        });
        let base = Pairing {
            request_category: Category::Water,
            offer_category: Category::Water,
            distance_m: 1_234.5,
            reach_m: 10_000.0,
            remaining: 12,
            offered: 5,
            urgency: Urgency::Normal,
            age_hours: 3.25,
        };
        let pairs = [
            base,
            Pairing {
                offer_category: Category::Other,
                urgency: Urgency::Critical,
                offered: 40,
                ..base
            },
            Pairing {
                request_category: Category::Other,
                offer_category: Category::Fuel,
                urgency: Urgency::Low,
                age_hours: 30.0,
                ..base
            },
            Pairing {
                distance_m: 9_999.0,
                reach_m: 10_000.0,
                urgency: Urgency::High,
                remaining: 1,
                ..base
            },
            Pairing {
                distance_m: 0.0,
                reach_m: 2_000.0,
                age_hours: 0.0,
                ..base
            },
        ];
        let far = Pairing {
            distance_m: 10_000.5,
            ..base
        };
        let unrelated = Pairing {
            offer_category: Category::Food,
            ..base
        };
        let nothing_left = Pairing {
            remaining: 0,
            ..base
        };
        for p in pairs.into_iter().chain([far, unrelated, nothing_left]) {
            let sql: Option<f64> = sqlx::query_scalar(concat!(
                "select ",
                super::score_sql!(),
                " from (select ",
                super::fit_sql!("$1", "$2"),
                " as fit, $3::float8 as d, $4::float8 as reach_m, $5::int as offered, \
                 $6::int as remaining, $7::text as urgency, $8::float8 as age_hours) m where ",
                super::matches_sql!()
            ))
            .bind(p.offer_category.as_str())
            .bind(p.request_category.as_str())
            .bind(p.distance_m)
            .bind(p.reach_m)
            .bind(p.offered)
            .bind(p.remaining)
            .bind(p.urgency.as_str())
            .bind(p.age_hours)
            .fetch_optional(&mut db)
            .await
            .expect("score query");
            let rust = match_score(&p);
            match (sql, rust) {
                (Some(sql), Some(rust)) => {
                    assert!((sql - rust).abs() < 1e-12, "{p:?}: SQL {sql}, anpi {rust}")
                }
                (None, None) => {}
                _ => panic!("{p:?}: SQL {sql:?}, anpi {rust:?}"),
            }
        }
        assert_eq!(match_score(&far), None);
        assert_eq!(match_score(&unrelated), None);
    }
}
