//! The sample data compiled into the binary, so `anpi serve` shows real
//! shelters from any working directory with no setup.

/// Nanao City's designated evacuation sites (national standard layout).
pub const NANAO_SHELTERS_CSV: &str = include_str!("../geodata/noto-2024-nanao/reference_data.csv");

/// The city's first open-shelter list after the 2024-01-01 earthquake kept
/// in the data (2024-01-09 18:00): a fresh embedded service starts at that
/// moment, so the finder and the board show open shelters at once.
pub const NANAO_FIRST_SNAPSHOT_CSV: &str =
    include_str!("../geodata/noto-2024-nanao/history/open_shelter_Nanao-shi_2024-01-09-1800.csv");

/// Who the sample state is shown as coming from, with its date.
pub const NANAO_SNAPSHOT_BY: &str = "sample data: 七尾市 2024-01-09 18:00";

/// The credit the data's licence (CC BY 4.0) asks for, shipped with it.
pub const NANAO_CREDIT: &str = "Shelter data: compiled by raokiey (R06-Noto-Peninsula-EQ-open-shelter-Nanao) from 七尾市「避難所一覧/開設中の避難所状況」, 七尾市「指定福祉避難所」, 石川県「石川県指定緊急避難所一覧」 and 七尾市「七尾市指定緊急避難所施設一覧」, CC BY 4.0.";
