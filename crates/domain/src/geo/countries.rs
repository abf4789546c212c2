//! Country boundaries, to catch positions that are not in the plot's stated country of
//! production (often latitude and longitude given the wrong way round, or a plot placed across
//! a border).
//!
//! The boundaries are OpenStreetMap's, as the `country-boundaries` crate (crates.io, Apache-2.0)
//! ships them: its 360 × 180 raster of simplified country polygons, whose data is licensed under
//! the Open Data Commons Open Database License (ODbL), © OpenStreetMap contributors. A position
//! counts as inside a country when it, or a point [`TOLERANCE_KM`] from it in any of
//! [`DIRECTIONS`] directions, is inside: the simplified polygons and the plot's own survey may
//! each be a little off at a border, and a plot on the border is in both countries.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::sync::Mutex;

use country_boundaries::{BOUNDARIES_ODBL_360X180, BoundingBox, CountryBoundaries, LatLon};

/// (west, south, east, north) in degrees.
pub(super) type BoundingBoxDeg = (f64, f64, f64, f64);

/// How far from a country's border a position may lie and still count as inside it.
pub(super) const TOLERANCE_KM: f64 = 1.0;
/// Points on the circle of [`TOLERANCE_KM`] tried around a position outside.
const DIRECTIONS: usize = 16;
/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.32;

struct Boundaries {
    data: CountryBoundaries,
    /// Every country code the data has (ISO 3166-1 alpha-2).
    codes: HashSet<String>,
}

static BOUNDARIES: LazyLock<Option<Boundaries>> = LazyLock::new(|| {
    let data = CountryBoundaries::from_reader(BOUNDARIES_ODBL_360X180).ok()?;
    let world = BoundingBox::new(-89.999, -180.0, 89.999, 179.999).ok()?;
    let codes = data
        .intersecting_ids(world)
        .into_iter()
        .filter(|id| id.len() == 2)
        .map(str::to_string)
        .collect();
    Some(Boundaries { data, codes })
});

/// Whether the boundary data has the country `code` (upper case); others are not checked.
pub(super) fn known(code: &str) -> bool {
    BOUNDARIES.as_ref().is_some_and(|b| b.codes.contains(code))
}

/// Whether (`lon`, `lat`) lies in the country `code` (upper case) or within [`TOLERANCE_KM`]
/// of it.
pub(super) fn contains(code: &str, lon: f64, lat: f64) -> bool {
    within(code, lon, lat, TOLERANCE_KM)
}

/// Whether (`lon`, `lat`) lies in the country `code` (upper case) or within `km` of it.
pub(super) fn within(code: &str, lon: f64, lat: f64, km: f64) -> bool {
    let Some(boundaries) = BOUNDARIES.as_ref() else {
        return true;
    };
    if !lon.is_finite() || !lat.is_finite() {
        return false;
    }
    let is_in = |lon: f64, lat: f64| {
        let lon = if lon > 180.0 {
            lon - 360.0
        } else if lon < -180.0 {
            lon + 360.0
        } else {
            lon
        };
        LatLon::new(lat.clamp(-90.0, 90.0), lon).is_ok_and(|at| boundaries.data.is_in(at, code))
    };
    if is_in(lon, lat) {
        return true;
    }
    if km <= 0.0 {
        return false;
    }
    let dlat = km / KM_PER_DEGREE;
    let dlon = dlat / lat.to_radians().cos().abs().max(0.01);
    (0..DIRECTIONS).any(|k| {
        let angle = std::f64::consts::TAU * k as f64 / DIRECTIONS as f64;
        is_in(lon + dlon * angle.cos(), lat + dlat * angle.sin())
    })
}

/// Which cells of a `cols` × `rows` grid over the box (`west`, `south`) – (`east`, `north`) have
/// their centre in the country `code`, row by row from the north; `None` when the boundary data
/// does not have the country.
pub(super) fn mask(
    code: &str,
    (west, south, east, north): (f64, f64, f64, f64),
    cols: usize,
    rows: usize,
) -> Option<Vec<bool>> {
    if !known(code) {
        return None;
    }
    let (dx, dy) = ((east - west) / cols as f64, (north - south) / rows as f64);
    Some(
        (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .map(|(r, c)| {
                let lon = west + dx * (c as f64 + 0.5);
                let lat = north - dy * (r as f64 + 0.5);
                within(code, lon, lat, 0.0)
            })
            .collect(),
    )
}

/// The bounding box (west, south, east, north) of the country `code` by the boundary data, to
/// a degree's precision (the centres of the one-degree cells inside it, widened by half a cell);
/// `None` when the data does not have it. Computed once per country.
pub(super) fn bbox(code: &str) -> Option<BoundingBoxDeg> {
    static BOXES: LazyLock<Mutex<HashMap<String, Option<BoundingBoxDeg>>>> =
        LazyLock::new(Default::default);
    if !known(code) {
        return None;
    }
    if let Some(found) = BOXES.lock().unwrap_or_else(|e| e.into_inner()).get(code) {
        return *found;
    }
    // Cells of a quarter degree, so that small countries are found too.
    const STEP: f64 = 0.25;
    let mut found: Option<BoundingBoxDeg> = None;
    for row in 0..(180.0 / STEP) as usize {
        let lat = -90.0 + STEP * (row as f64 + 0.5);
        for col in 0..(360.0 / STEP) as usize {
            let lon = -180.0 + STEP * (col as f64 + 0.5);
            if within(code, lon, lat, 0.0) {
                let (w, s, e, n) = found.unwrap_or((lon, lat, lon, lat));
                found = Some((w.min(lon), s.min(lat), e.max(lon), n.max(lat)));
            }
        }
    }
    let found = found.map(|(w, s, e, n)| {
        (
            w - STEP / 2.0,
            s - STEP / 2.0,
            e + STEP / 2.0,
            n + STEP / 2.0,
        )
    });
    BOXES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(code.to_string(), found);
    found
}
