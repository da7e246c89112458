//! The aid benchmark's section of BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::Duration;

use super::{AidArgs, Load, Report, Row, claims, plural};
use crate::report;

/// Microseconds or milliseconds, whichever reads better.
fn duration(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

fn table(s: &mut String, rows: &[Row]) {
    let _ = writeln!(
        s,
        "| what | how | p50 | p99 | max | answers/s | records per answer | errors |\n|---|---|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {} |",
            r.what,
            r.how,
            duration(r.latency.value_at_quantile(0.5)),
            duration(r.latency.value_at_quantile(0.99)),
            duration(r.latency.max()),
            r.per_second,
            r.answers,
            r.errors
        );
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub(super) fn markdown(
    args: &AidArgs,
    threads: usize,
    load: &Load,
    found: &Report,
    took: Duration,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Aid matching and claims\n");
    let _ = writeln!(
        s,
        "{}{}; {}; load average {} when the run started.\n",
        report::machine(),
        if load.dirty {
            " (with uncommitted changes to src/ or migrations/)"
        } else {
            ""
        },
        found.versions,
        load.load_average
    );
    let _ = writeln!(
        s,
        "Command: `loadtest/run-aid` (= `anpi-loadtest aid --requests {} --offers {} --queries {} --match-queries {} \
         --sequential {} --seconds {} --connections {} --radius-m {} --hot-quantity {} --claimants {} --seed {}`); \
         the whole run took {:.0} s.\n",
        args.requests,
        args.offers,
        args.queries,
        args.match_queries,
        args.sequential,
        args.seconds,
        args.connections,
        args.radius_m,
        args.hot_quantity,
        args.claimants,
        args.seed,
        took.as_secs_f64()
    );
    let sp = &found.spread;
    let _ = writeln!(
        s,
        "**Data.** {} open requests (10% partly claimed) and {} offers, placed like Japan's population \
         (30 metropolitan areas and regional centres weighted by population, scattered 20–60 km: {} of the \
         requests within 50 km of Tokyo Station, {} of Osaka Station); categories uniform over the 14 codes; \
         1–3 item lines of 1–20 units; urgency low 20% / normal 50% / high 20% / critical 10%; posted in the \
         last 48 h (offers 72 h); offers reach 2–20 km (longest {:.0} m), 5% of them past their \
         `available_until`. The requests' public places are {} H3 cells (resolution 7); the fullest holds {} \
         requests, all equally near to anyone. They fall in {} synthetic municipalities (grid cells of about \
         200 km², the size of Japan's average municipality; the fullest holds {}). Same seed, same rows, for \
         every peer: loaded once into anpi's own tables by `COPY`.\n",
        args.requests,
        args.offers,
        percent(sp.near_tokyo),
        percent(sp.near_osaka),
        found.max_reach,
        sp.cells,
        sp.densest_cell,
        sp.municipalities,
        sp.densest_municipality,
    );
    let indexes: Vec<String> = load
        .indexes
        .iter()
        .map(|(what, d)| format!("{what} {:.1} s", d.as_secs_f64()))
        .collect();
    let _ = writeln!(
        s,
        "**Loading.** Generating {:.1} s; `COPY` into `aid_request` and `aid_offer` (with anpi's indexes) {:.1} s; \
         PostGIS's GiST indexes: {}. anpi reads what its index holds as it does at start: \
         `Store::active_aid_requests` {:.1} s, `open_aid_offers` {:.1} s, `AidIndex::new` {:.1} s; the real \
         `anpi serve` on this database answered `/readyz` {:.1} s after it was started, at {:.0} MiB resident.\n",
        load.generate.as_secs_f64(),
        load.copy.as_secs_f64(),
        indexes.join(", "),
        load.store_requests.as_secs_f64(),
        load.store_offers.as_secs_f64(),
        load.index_build.as_secs_f64(),
        load.server_ready.as_secs_f64(),
        load.server_rss_mib
    );
    let _ = writeln!(
        s,
        "### Nearest 20 open requests within {:.0} m of a volunteer\n\n\
         anpi: `AidIndex::nearest_requests(at, {:.0}, 20, &RequestFilter::default())`; HTTP: \
         `GET /v1/aid/requests?near=LAT,LON&radius_m={:.0}&limit=20`; PostGIS: `… where status in ('open', \
         'partially_claimed') and hidden = false and ST_DWithin(pub_geog, point, {:.0}, false) order by pub_geog <-> point \
         limit 20`. Volunteer points drawn from the same population distribution.\n",
        args.radius_m, args.radius_m, args.radius_m, args.radius_m
    );
    table(&mut s, &found.near_rows);
    let _ = writeln!(
        s,
        "\n### Top 10 offers for a request\n\n\
         anpi: `AidIndex::offers_for(&request, now, 10)`; HTTP: `GET /v1/aid/requests/{{id}}/matches?limit=10`; \
         PostGIS: offers with `ST_DWithin(offer.pub_geog, request.pub_geog, {:.0}, false)` (the longest reach: \
         for the index) and `ST_Distance(…, false) <= offer.reach_m`, open, not past `available_until`, category \
         fitting, ranked by docs/aid.md's score written in SQL (`loadtest/src/aid/sql.rs`, checked against \
         `match_score` by a unit test), ties to the nearer. Requests picked at random (so, like the population).\n",
        found.max_reach
    );
    table(&mut s, &found.match_rows);
    let (all, reachable, sampled) = found.visited;
    let _ = writeln!(
        s,
        "\nAround a request's public place lie on average {all:.0} open offers within {:.0} km \
         (`MAX_REACH_M`, the radius `offers_for` walks, nearest first) and {reachable:.0} within {:.0} m \
         (the longest reach any offer has: all that can match) — {sampled} requests sampled.",
        anpi::aidindex::MAX_REACH_M / 1000.0,
        found.max_reach
    );
    let _ = writeln!(
        s,
        "\nIn-process rows time the index call alone, on {threads} thread{} for the second; answers/s is over \
         the wall clock. HTTP rows are the real `anpi serve` (release build) and include the socket, \
         parsing, JSON and reading the whole body; PostGIS rows include the loopback round trip and decoding. \
         The same tokio client drives both under load: {} tasks, one keep-alive connection each (reqwest / \
         a sqlx pool of {}), each sending its next query when the last was answered.\n",
        plural(threads),
        args.connections,
        args.connections
    );
    let _ = writeln!(
        s,
        "### Agreement with anpi (first {} queries of each kind)\n\n\
         | query | PostGIS, public places: same records | … or differing only among equals | PostGIS, exact points: anpi's records also there | anpi over HTTP = in process |\n|---|---:|---:|---:|---:|",
        args.sequential
    );
    for (what, public, exact, http) in &found.agreement {
        let _ = writeln!(
            s,
            "| {what} | {} | {} | {} | {} |",
            percent(public.same as f64 / public.compared.max(1) as f64),
            percent(public.agreeing()),
            percent(exact.overlap),
            percent(http.agreeing()),
        );
    }
    let _ = writeln!(
        s,
        "\nanpi places every request and offer at the centre of its H3 cell (resolution 7, about 5 km²) so that \
         nothing it answers, order included, tells more than the public view; PostGIS on the same public places \
         (`pub_geog`) answers the same question. Where they name other records, the distances (nearest) or \
         scores (offers) are the same one by one: many requests share one cell centre, and which of several \
         equally near ones make the 20th place is arbitrary in both. From the exact points (`geog`) the answer \
         is another one by design: the share of anpi's records that are also in it measures what the privacy \
         blur moves (the blur is up to about 1.4 km).\n"
    );
    let c = &found.claims;
    let other: Vec<String> = c.other.iter().map(|(s, n)| format!("{n} × {s}")).collect();
    let _ = writeln!(
        s,
        "### Claims on one hot request\n\n\
         One request of {} units (water, critical, in Shinjuku, whose synthetic municipality holds {} open \
         requests). {} volunteers, registered \
         by a coordinator through the API (`POST /v1/volunteers`, {:.1} s for all, 16 at once), each with a \
         keep-alive connection opened beforehand (`GET /v1/me`), all sending `POST /v1/aid/requests/{{id}}/claims \
         {{\"quantity\": 1}}` at the same moment. Fresh volunteers hold no claims, so the throttle does not \
         apply; each claims once.\n\n\
         | claimants | all answered in | claims/s (all answers) | accepted (201) | refused (409) | other statuses | over-claim |\n\
         |---:|---:|---:|---:|---:|---|---:|\n\
         | {} | {:.2} s | {:.0} | {} | {} | {} | **{}** |\n",
        c.quantity,
        found.hot_area_open,
        c.claimants,
        c.registration.as_secs_f64(),
        c.claimants,
        c.elapsed.as_secs_f64(),
        c.claimants as f64 / c.elapsed.as_secs_f64(),
        c.accepted,
        c.refused,
        if other.is_empty() {
            "none".to_owned()
        } else {
            other.join(", ")
        },
        c.stored.over_claim(),
    );
    let shares = [0.01, 0.1, 0.25, 0.5, 0.75, 1.0];
    let marks = claims::milestones(&c.acceptances, &shares);
    let _ = writeln!(
        s,
        "| acceptances answered | {} |\n|---|{}\n| after | {} |\n",
        marks
            .iter()
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
            .join(" | "),
        "---:|".repeat(marks.len()),
        marks
            .iter()
            .map(|(_, at)| format!("{:.2} s", at.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    let _ = writeln!(
        s,
        "Latency of all answers: p50 {}, p99 {}, max {}. The server's database connections (a pool of 16) \
         waiting on a lock, sampled every 50 ms: at most {}, {:.1} on average.\n",
        duration(c.latency.value_at_quantile(0.5)),
        duration(c.latency.value_at_quantile(0.99)),
        duration(c.latency.max()),
        c.lock_waiters.0,
        c.lock_waiters.1,
    );
    let st = &c.stored;
    let _ = writeln!(
        s,
        "Read back from the database: `aid_request.claimed` = {} of {} (status `{}`); {} live claims in \
         `aid_claim` holding {} units; over-claim = max(0, {} − {}) = **{}**. Volunteers answered with an \
         error whose claim is stored all the same: **{}**; answered 201 with no claim stored: {}.\n",
        st.claimed,
        st.quantity,
        st.status,
        st.live_claims,
        st.live_units,
        st.live_units,
        st.quantity,
        st.over_claim(),
        c.stored_unacknowledged,
        c.acknowledged_unstored,
    );
    let _ = writeln!(
        s,
        "Caveats: two cores shared by the load generator, anpi and PostgreSQL (PostgreSQL's default settings, \
         `synchronous_commit=on`); loopback only; one run; PostgreSQL's tables fit in the page cache, not in \
         its `shared_buffers`."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_right_unit() {
        assert_eq!(duration(24_400), "24.4 µs");
        assert_eq!(duration(2_345_000), "2.35 ms");
        assert_eq!(duration(16_130_000), "16.1 ms");
    }
}
