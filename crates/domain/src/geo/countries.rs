//! Approximate country bounding boxes, used to catch positions that cannot be in the plot's
//! stated country of production (often latitude and longitude given the wrong way round).
//!
//! The boxes are the approximate extent of each country's land in WGS84 degrees, written as
//! `(min_lon, min_lat, max_lon, max_lat)`. [`BBox::contains`] widens every box by [`MARGIN`], so
//! a position near a border is never flagged because the table is a little off. The boxes are
//! deliberately coarse: a position inside the box can still be in a neighbouring country.
//!
//! A country made of far-apart parts has one box per part, so that the sea between them is not
//! counted as inside. Small remote territories that do not grow the commodities we trace are
//! left out and say so in a comment. No box crosses the antimeridian: the only listed country
//! that spans it is the US (the western Aleutians), and those islands are left out.

/// How far, in degrees, a position may lie outside a box and still count as inside.
pub(super) const MARGIN: f64 = 0.5;

/// An axis-aligned box in WGS84 degrees, with `min_lon <= max_lon` and `min_lat <= max_lat`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BBox {
    /// Whether (`lon`, `lat`) lies in the box widened by [`MARGIN`] on every side.
    pub(super) fn contains(&self, lon: f64, lat: f64) -> bool {
        (self.min_lon - MARGIN..=self.max_lon + MARGIN).contains(&lon)
            && (self.min_lat - MARGIN..=self.max_lat + MARGIN).contains(&lat)
    }
}

const fn b(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> BBox {
    BBox {
        min_lon,
        min_lat,
        max_lon,
        max_lat,
    }
}

/// Country boxes by ISO 3166-1 alpha-2 code, sorted by code (a test keeps it so).
pub(super) const COUNTRIES: &[(&str, &[BBox])] = &[
    // Angola, including the Cabinda exclave.
    ("AO", &[b(11.6, -18.1, 24.1, -4.3)]),
    // Argentina, mainland and Tierra del Fuego; the Falklands are not included.
    ("AR", &[b(-73.6, -55.1, -53.6, -21.8)]),
    ("AT", &[b(9.5, 46.4, 17.2, 49.0)]),
    // Australia, mainland, Tasmania and the Torres Strait islands; external territories
    // (Lord Howe, Norfolk, Christmas, Cocos) are not included.
    ("AU", &[b(112.9, -43.7, 153.7, -9.1)]),
    ("BD", &[b(88.0, 20.6, 92.7, 26.6)]),
    ("BE", &[b(2.5, 49.5, 6.4, 51.5)]),
    ("BF", &[b(-5.5, 9.4, 2.4, 15.1)]),
    ("BI", &[b(29.0, -4.5, 30.9, -2.3)]),
    ("BJ", &[b(0.8, 6.1, 3.9, 12.4)]),
    ("BO", &[b(-69.7, -22.9, -57.5, -9.7)]),
    // Brazil, mainland; the small Atlantic islands (Fernando de Noronha, Trindade) are not included.
    ("BR", &[b(-74.0, -33.8, -34.8, 5.3)]),
    ("BZ", &[b(-89.2, 15.9, -87.5, 18.5)]),
    ("CD", &[b(12.2, -13.5, 31.3, 5.4)]),
    ("CG", &[b(11.1, -5.1, 18.7, 3.7)]),
    ("CH", &[b(5.9, 45.8, 10.5, 47.8)]),
    // Côte d'Ivoire.
    ("CI", &[b(-8.6, 4.3, -2.5, 10.7)]),
    ("CM", &[b(8.5, 1.6, 16.2, 13.1)]),
    // China, mainland and Hainan; the South China Sea islands are not included.
    ("CN", &[b(73.5, 18.1, 134.8, 53.6)]),
    // Colombia, mainland, and San Andrés and Providencia.
    (
        "CO",
        &[b(-79.1, -4.3, -66.8, 12.5), b(-81.8, 12.4, -81.3, 13.4)],
    ),
    // Costa Rica, mainland; Cocos Island is not included.
    ("CR", &[b(-86.0, 8.0, -82.5, 11.3)]),
    ("CU", &[b(-85.0, 19.8, -74.1, 23.3)]),
    ("CZ", &[b(12.1, 48.5, 18.9, 51.1)]),
    ("DE", &[b(5.8, 47.2, 15.1, 55.1)]),
    // Denmark, including Bornholm; Greenland and the Faroes have their own codes.
    ("DK", &[b(8.0, 54.5, 15.2, 57.8)]),
    ("DO", &[b(-72.1, 17.4, -68.3, 20.0)]),
    // Ecuador, mainland, and the Galápagos.
    (
        "EC",
        &[b(-81.1, -5.1, -75.2, 1.5), b(-92.1, -1.5, -89.2, 1.7)],
    ),
    ("EG", &[b(24.7, 22.0, 36.9, 31.7)]),
    // Spain, mainland and Balearics (down to Ceuta and Melilla), and the Canary Islands.
    (
        "ES",
        &[b(-9.4, 35.2, 4.4, 43.8), b(-18.2, 27.6, -13.4, 29.5)],
    ),
    ("ET", &[b(32.9, 3.4, 48.0, 15.0)]),
    // France, metropolitan and Corsica; overseas departments have their own codes (GF, GP, MQ, RE, YT).
    ("FR", &[b(-5.2, 41.3, 9.6, 51.1)]),
    ("GA", &[b(8.7, -4.0, 14.5, 2.4)]),
    // United Kingdom of Great Britain and Northern Ireland.
    ("GB", &[b(-8.7, 49.9, 1.8, 60.9)]),
    ("GH", &[b(-3.3, 4.7, 1.2, 11.2)]),
    ("GN", &[b(-15.1, 7.2, -7.6, 12.7)]),
    // Equatorial Guinea: mainland (Río Muni), Bioko, and Annobón.
    (
        "GQ",
        &[
            b(9.3, 0.9, 11.4, 2.4),
            b(8.4, 3.2, 9.0, 3.8),
            b(5.6, -1.5, 5.7, -1.4),
        ],
    ),
    ("GR", &[b(19.3, 34.8, 29.7, 41.8)]),
    ("GT", &[b(-92.3, 13.7, -88.2, 17.9)]),
    ("GY", &[b(-61.4, 1.1, -56.5, 8.6)]),
    // Honduras, mainland and Bay Islands; the Swan Islands are not included.
    ("HN", &[b(-89.4, 12.9, -83.1, 16.5)]),
    ("HT", &[b(-74.5, 18.0, -71.6, 20.1)]),
    // Indonesia, from Weh (Sumatra) to the Papua border, Rote to Miangas.
    ("ID", &[b(95.0, -11.1, 141.1, 6.1)]),
    ("IE", &[b(-10.5, 51.4, -6.0, 55.4)]),
    // India, including the Andaman and Nicobar Islands and the whole of Jammu and Kashmir as claimed.
    ("IN", &[b(68.1, 6.7, 97.4, 37.1)]),
    ("IR", &[b(44.0, 25.0, 63.4, 39.8)]),
    ("IT", &[b(6.6, 35.5, 18.6, 47.1)]),
    ("JM", &[b(-78.4, 17.7, -76.2, 18.5)]),
    ("KE", &[b(33.9, -4.7, 41.9, 5.5)]),
    ("KG", &[b(69.2, 39.2, 80.3, 43.3)]),
    ("KH", &[b(102.3, 9.9, 107.7, 14.7)]),
    ("KZ", &[b(46.5, 40.5, 87.4, 55.5)]),
    ("LA", &[b(100.0, 13.9, 107.7, 22.5)]),
    ("LK", &[b(79.6, 5.9, 81.9, 9.9)]),
    ("LR", &[b(-11.5, 4.3, -7.4, 8.6)]),
    ("LU", &[b(5.7, 49.4, 6.6, 50.2)]),
    // Madagascar, main island and nearby islets.
    ("MG", &[b(43.2, -25.7, 50.5, -11.9)]),
    ("ML", &[b(-12.3, 10.1, 4.3, 25.0)]),
    ("MM", &[b(92.1, 9.6, 101.2, 28.6)]),
    ("MW", &[b(32.6, -17.2, 35.9, -9.3)]),
    // Mexico, mainland, Baja California and Pacific islands out to Guadalupe.
    ("MX", &[b(-118.5, 14.5, -86.7, 32.8)]),
    // Malaysia, peninsula and Borneo (Sarawak, Sabah).
    ("MY", &[b(99.6, 0.8, 119.3, 7.4)]),
    ("MZ", &[b(30.2, -26.9, 40.9, -10.4)]),
    ("NG", &[b(2.6, 4.2, 14.7, 13.9)]),
    ("NI", &[b(-87.7, 10.7, -82.7, 15.1)]),
    // Netherlands, European part; the Caribbean islands are not included.
    ("NL", &[b(3.3, 50.7, 7.3, 53.6)]),
    ("NP", &[b(80.0, 26.3, 88.2, 30.5)]),
    ("PA", &[b(-83.1, 7.2, -77.1, 9.7)]),
    ("PE", &[b(-81.4, -18.4, -68.6, 0.0)]),
    // Papua New Guinea, to Bougainville; remote atolls east of 156°E are not included.
    ("PG", &[b(140.8, -11.7, 156.0, -1.0)]),
    ("PH", &[b(116.9, 4.5, 126.7, 21.2)]),
    ("PK", &[b(60.8, 23.6, 77.9, 37.1)]),
    ("PL", &[b(14.1, 49.0, 24.2, 54.9)]),
    // Portugal: mainland, Madeira (with the Savage Islands), and the Azores.
    (
        "PT",
        &[
            b(-9.6, 36.9, -6.1, 42.2),
            b(-17.3, 30.0, -15.8, 33.2),
            b(-31.3, 36.9, -25.0, 39.8),
        ],
    ),
    ("PY", &[b(-62.7, -27.7, -54.2, -19.2)]),
    ("RW", &[b(28.8, -2.9, 30.9, -1.0)]),
    ("SD", &[b(21.8, 8.6, 38.7, 22.3)]),
    ("SE", &[b(11.0, 55.3, 24.2, 69.1)]),
    ("SL", &[b(-13.4, 6.9, -10.2, 10.0)]),
    ("SN", &[b(-17.6, 12.3, -11.3, 16.7)]),
    ("SR", &[b(-58.1, 1.8, -53.9, 6.0)]),
    // São Tomé and Príncipe.
    ("ST", &[b(6.4, -0.1, 7.5, 1.8)]),
    ("SV", &[b(-90.2, 13.1, -87.6, 14.5)]),
    ("SY", &[b(35.7, 32.3, 42.4, 37.4)]),
    ("TG", &[b(-0.2, 6.1, 1.9, 11.2)]),
    ("TH", &[b(97.3, 5.6, 105.7, 20.5)]),
    ("TJ", &[b(67.3, 36.6, 75.2, 41.1)]),
    // Timor-Leste, including the Oecusse exclave and Atauro.
    ("TL", &[b(124.0, -9.5, 127.4, -8.1)]),
    ("TM", &[b(52.4, 35.1, 66.7, 42.8)]),
    ("TR", &[b(25.6, 35.8, 44.9, 42.2)]),
    ("TT", &[b(-62.0, 10.0, -60.5, 11.4)]),
    ("TZ", &[b(29.3, -11.8, 40.5, -0.9)]),
    ("UG", &[b(29.5, -1.5, 35.1, 4.3)]),
    // United States: the contiguous states, Alaska east of the antimeridian, and the main
    // Hawaiian islands. The western Aleutians (across 180°) and the north-western Hawaiian
    // islands are not included; Puerto Rico and other territories have their own codes.
    (
        "US",
        &[
            b(-124.8, 24.5, -66.9, 49.4),
            b(-179.2, 51.2, -129.9, 71.4),
            b(-160.3, 18.9, -154.8, 22.3),
        ],
    ),
    ("UY", &[b(-58.5, -35.0, -53.0, -30.0)]),
    ("UZ", &[b(55.9, 37.1, 73.2, 45.6)]),
    // Venezuela, mainland and nearby Caribbean islands; Isla de Aves is not included.
    ("VE", &[b(-73.4, 0.6, -59.8, 12.2)]),
    // Viet Nam, mainland and coastal islands; the Paracel and Spratly Islands are not included.
    ("VN", &[b(102.1, 8.3, 109.5, 23.4)]),
    // South Africa, mainland; the Prince Edward Islands are not included.
    ("ZA", &[b(16.4, -34.9, 32.9, -22.1)]),
    ("ZM", &[b(21.9, -18.1, 33.8, -8.2)]),
    ("ZW", &[b(25.2, -22.5, 33.1, -15.6)]),
];

/// The boxes of the country with ISO 3166-1 alpha-2 code `code` (case-insensitive, surrounding
/// whitespace ignored), or `None` when the table has no entry for it.
pub(super) fn boxes(code: &str) -> Option<&'static [BBox]> {
    let code = code.trim().to_ascii_uppercase();
    COUNTRIES
        .binary_search_by(|(c, _)| (*c).cmp(code.as_str()))
        .ok()
        .map(|i| COUNTRIES[i].1)
}
