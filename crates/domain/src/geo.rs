//! Plot geometry checks: GeoJSON in WGS84 (longitude, latitude), as EUDR asks.
//!
//! Two questions, kept apart. [`check_geometry`] says whether a geometry is acceptable at all
//! (a rejection when not). [`eudr_grade`] says, for a geometry that passed, why it is not yet
//! good enough for an EUDR due diligence statement (a list of reasons, never a rejection).

mod countries;

use std::cmp::Ordering;
use std::fmt;

use geojson::{GeoJson, Value};
use rust_decimal::Decimal;

/// A plot's geometry as GeoJSON text without anything else: a plot registered as
/// a Feature loses its properties (free text, such as a farmer's name); any other
/// text is returned as it is.
pub fn bare_geometry(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o))
            if o.get("type").and_then(|t| t.as_str()) == Some("Feature") =>
        {
            o.get("geometry").map(|g| g.to_string()).unwrap_or_default()
        }
        _ => text.to_string(),
    }
}

/// A plot's shapes to draw: each polygon's outer ring, and each point as a ring of one
/// position, as (longitude, latitude). Empty for text that is not a geometry (or a Feature of
/// one) of points and polygons.
pub fn outlines(text: &str) -> Vec<Vec<(f64, f64)>> {
    fn position(p: &[f64]) -> Option<(f64, f64)> {
        match p {
            [lon, lat, ..] if lon.is_finite() && lat.is_finite() => Some((*lon, *lat)),
            _ => None,
        }
    }
    fn ring(r: &[Vec<f64>]) -> Vec<(f64, f64)> {
        r.iter().filter_map(|p| position(p)).collect()
    }
    fn shapes(value: &Value, out: &mut Vec<Vec<(f64, f64)>>) {
        match value {
            Value::Point(p) => out.extend(position(p).map(|p| vec![p])),
            Value::MultiPoint(ps) => {
                out.extend(ps.iter().filter_map(|p| position(p).map(|p| vec![p])))
            }
            Value::Polygon(rings) => out.extend(rings.first().map(|r| ring(r))),
            Value::MultiPolygon(polygons) => {
                out.extend(polygons.iter().filter_map(|p| p.first().map(|r| ring(r))));
            }
            Value::GeometryCollection(gs) => gs.iter().for_each(|g| shapes(&g.value, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match text.parse::<GeoJson>() {
        Ok(GeoJson::Geometry(g)) => shapes(&g.value, &mut out),
        Ok(GeoJson::Feature(f)) => {
            if let Some(g) = &f.geometry {
                shapes(&g.value, &mut out);
            }
        }
        _ => {}
    }
    out.retain(|r| !r.is_empty());
    out
}

/// Which cells of a `cols` × `rows` grid over the box (`west`, `south`, `east`, `north`), row by
/// row from the north, lie in the country `code` (ISO 3166-1 alpha-2) by the boundary data of
/// the country check; `None` when the data does not have the country.
pub fn country_mask(
    code: &str,
    bbox: (f64, f64, f64, f64),
    cols: usize,
    rows: usize,
) -> Option<Vec<bool>> {
    countries::mask(&code.trim().to_ascii_uppercase(), bbox, cols, rows)
}

/// The bounding box (west, south, east, north) of the country `code` (ISO 3166-1 alpha-2) by
/// the boundary data of the country check, to a quarter degree; `None` when the data does not
/// have the country.
pub fn country_bbox(code: &str) -> Option<(f64, f64, f64, f64)> {
    countries::bbox(&code.trim().to_ascii_uppercase())
}

/// A GeoJSON text with every coordinate rounded to `decimals` places (a generalised geometry
/// for the public view). Text that is not JSON is returned unchanged.
pub fn round_geometry(text: &str, decimals: u32) -> String {
    fn round(value: &mut serde_json::Value, scale: f64) {
        match value {
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| round(v, scale)),
            serde_json::Value::Number(n) => {
                if let Some(rounded) = n
                    .as_f64()
                    .map(|f| (f * scale).round() / scale)
                    .and_then(serde_json::Number::from_f64)
                {
                    *n = rounded;
                }
            }
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_string();
    };
    let scale = 10f64.powi(decimals as i32);
    if let Some(coordinates) = value.get_mut("coordinates") {
        round(coordinates, scale);
    }
    if let Some(geometries) = value.get_mut("geometries").and_then(|g| g.as_array_mut()) {
        for g in geometries {
            if let Some(coordinates) = g.get_mut("coordinates") {
                round(coordinates, scale);
            }
        }
    }
    value.to_string()
}

/// Checks that `text` is a GeoJSON Point, Polygon or MultiPolygon geometry (or a Feature holding
/// one) on Earth, with simple polygon rings.
///
/// Every position has a longitude in [-180, 180] and a latitude in [-90, 90]. Every polygon ring
/// (the outer boundary and each hole) has at least four positions, is closed, has at least three
/// distinct positions, and does not cross, touch or overlap itself. Rings are checked one at a
/// time, positions first, so the self-intersection test never sees NaN or infinity; whether a
/// hole crosses the outer boundary or another hole is not checked.
///
/// Self-intersection rules, on the longitude/latitude plane:
/// - A repeated consecutive position (a zero-length edge) is tolerated: it is skipped.
/// - Two edges that are not neighbours along the ring may not share any point, not even an
///   end point: a ring that touches itself at a vertex is rejected (draw two rings or two
///   polygons instead).
/// - Two neighbouring edges share only their common vertex; if the second folds back along the
///   first (a spike), the ring is rejected.
/// - The orientation test is exact for the f64 values given (a floating-point filter with an
///   exact fallback), unless a coordinate is non-zero but smaller than about 1e-290 in
///   magnitude, where products underflow.
///
/// Errors name the ring and, in a MultiPolygon, the polygon (both 1-based, ring 1 being the
/// outer boundary), and edges by their 1-based positions in the ring as written, for example
/// "ring 1 of polygon 2 crosses itself between positions 3-4 and 7-8".
///
/// A geometry of more than [`MAX_POSITIONS`] positions is rejected: the
/// self-intersection check is quadratic at worst, and a farm plot's boundary
/// never needs that many.
pub fn check_geometry(text: &str) -> Result<(), String> {
    let parsed: GeoJson = text
        .parse()
        .map_err(|e| format!("not valid GeoJSON: {e}"))?;
    let geometry = match parsed {
        GeoJson::Geometry(g) => g,
        GeoJson::Feature(f) => f
            .geometry
            .ok_or_else(|| "GeoJSON feature has no geometry".to_string())?,
        GeoJson::FeatureCollection(_) => {
            return Err("expected one geometry, got a FeatureCollection".into());
        }
    };
    let positions: usize = match &geometry.value {
        Value::Polygon(rings) => rings.iter().map(Vec::len).sum(),
        Value::MultiPolygon(polys) => polys.iter().flatten().map(Vec::len).sum(),
        _ => 0,
    };
    if positions > MAX_POSITIONS {
        return Err(format!(
            "a plot geometry may have at most {MAX_POSITIONS} positions, this one has {positions}; split the plot or simplify its boundary"
        ));
    }
    match &geometry.value {
        Value::Point(p) => check_position(p),
        Value::Polygon(rings) => check_polygon(rings, None),
        Value::MultiPolygon(polys) => {
            if polys.is_empty() {
                return Err("MultiPolygon has no polygons".into());
            }
            polys
                .iter()
                .enumerate()
                .try_for_each(|(i, p)| check_polygon(p, Some(i + 1)))
        }
        other => Err(format!(
            "geometry type {} is not allowed for a plot (Point, Polygon or MultiPolygon)",
            other.type_name()
        )),
    }
}

/// The most positions a plot geometry may have.
pub const MAX_POSITIONS: usize = 20_000;

fn check_position(p: &[f64]) -> Result<(), String> {
    if p.len() < 2 {
        return Err("a position needs longitude and latitude".into());
    }
    let (lon, lat) = (p[0], p[1]);
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(format!("longitude {lon} is outside [-180, 180]"));
    }
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(format!("latitude {lat} is outside [-90, 90]"));
    }
    Ok(())
}

/// Names a ring in error messages: "ring 2", or "ring 2 of polygon 3" in a MultiPolygon.
#[derive(Clone, Copy)]
struct RingName {
    ring: usize,
    polygon: Option<usize>,
}

impl fmt::Display for RingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.polygon {
            Some(p) => write!(f, "ring {} of polygon {p}", self.ring),
            None => write!(f, "ring {}", self.ring),
        }
    }
}

/// Checks one polygon; `polygon` is its 1-based number inside a MultiPolygon.
fn check_polygon(rings: &[Vec<Vec<f64>>], polygon: Option<usize>) -> Result<(), String> {
    if rings.is_empty() {
        return Err(match polygon {
            Some(p) => format!("polygon {p} has no rings"),
            None => "Polygon has no rings".into(),
        });
    }
    for (i, ring) in rings.iter().enumerate() {
        check_ring(
            ring,
            RingName {
                ring: i + 1,
                polygon,
            },
        )?;
    }
    Ok(())
}

fn check_ring(ring: &[Vec<f64>], name: RingName) -> Result<(), String> {
    if ring.len() < 4 {
        return Err(format!(
            "{name} needs at least 4 positions, got {}",
            ring.len()
        ));
    }
    for (i, p) in ring.iter().enumerate() {
        check_position(p).map_err(|e| format!("{name}, position {}: {e}", i + 1))?;
    }
    if ring.first() != ring.last() {
        return Err(format!(
            "{name} is not closed (first and last positions differ)"
        ));
    }
    let points: Vec<Pt> = ring.iter().map(|p| Pt { x: p[0], y: p[1] }).collect();
    let distinct = distinct_count(&points);
    if distinct < 3 {
        return Err(format!(
            "{name} is degenerate: it has {distinct} distinct positions, a polygon needs at least 3"
        ));
    }
    match self_contact(&points) {
        None => Ok(()),
        Some(c) => Err(format!("{name} {c}")),
    }
}

/// A position on the longitude (x) / latitude (y) plane.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pt {
    x: f64,
    y: f64,
}

/// How many different positions `points` holds (0.0 and -0.0 are the same).
fn distinct_count(points: &[Pt]) -> usize {
    // Adding 0.0 turns -0.0 into 0.0, so equal values have equal bits.
    let mut keys: Vec<(u64, u64)> = points
        .iter()
        .map(|p| ((p.x + 0.0).to_bits(), (p.y + 0.0).to_bits()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

/// One edge of a ring, with the 1-based positions (as written) of its two ends.
struct Edge {
    a: Pt,
    b: Pt,
    from: usize,
    to: usize,
    min_x: f64,
    max_x: f64,
    min_y: f64,
    max_y: f64,
}

/// How two edges meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    /// They cross at a point inside both.
    Cross,
    /// They share a single point that is an end of at least one of them.
    Touch,
    /// They lie on one line and share a stretch of positive length.
    Overlap,
}

/// Describes the first way the closed ring `ring` (at least 3 distinct positions) meets itself,
/// as the end of a sentence that starts with the ring's name; `None` when the ring is simple.
///
/// Zero-length edges are skipped. Edges are swept in order of their smallest longitude, and only
/// edges whose longitude and latitude ranges overlap are compared, so a ring of a few thousand
/// positions is quick.
fn self_contact(ring: &[Pt]) -> Option<String> {
    // Runs of equal consecutive positions collapse into one vertex: (position, first, last),
    // with first and last its 0-based indices in `ring`. The last vertex is the closing one.
    let mut vertices: Vec<(Pt, usize, usize)> = Vec::with_capacity(ring.len());
    for (i, &p) in ring.iter().enumerate() {
        match vertices.last_mut() {
            Some(v) if v.0 == p => v.2 = i,
            _ => vertices.push((p, i, i)),
        }
    }
    let n = vertices.len() - 1;
    if n < 3 {
        // Callers check for 3 distinct positions first; stay safe regardless.
        return Some("is degenerate: fewer than 3 distinct positions".into());
    }
    let edges: Vec<Edge> = (0..n)
        .map(|k| {
            let (a, _, last) = vertices[k];
            let (b, first, _) = vertices[k + 1];
            Edge {
                a,
                b,
                from: last + 1,
                to: first + 1,
                min_x: a.x.min(b.x),
                max_x: a.x.max(b.x),
                min_y: a.y.min(b.y),
                max_y: a.y.max(b.y),
            }
        })
        .collect();

    // Neighbouring edges k and k+1: the second may not fold back along the first.
    for k in 0..n {
        let (e, f) = (&edges[k], &edges[(k + 1) % n]);
        let (u, v, w) = (e.a, e.b, f.b);
        if orient(u, v, w) == 0 && same_side(u, v, w) {
            return Some(format!(
                "doubles back on itself at position {}: edges {}-{} and {}-{} overlap",
                e.to, e.from, e.to, f.from, f.to
            ));
        }
    }

    // Every other pair, swept by smallest longitude. Of all pairs that meet, the one reported
    // is the first in ring order, so the message does not depend on the sweep.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&i, &j| edges[i].min_x.total_cmp(&edges[j].min_x));
    let mut found: Option<(usize, usize, Contact)> = None;
    for (oi, &i) in order.iter().enumerate() {
        let e = &edges[i];
        for &j in &order[oi + 1..] {
            let f = &edges[j];
            if f.min_x > e.max_x {
                break;
            }
            if f.min_y > e.max_y || e.min_y > f.max_y {
                continue;
            }
            if (i + 1) % n == j || (j + 1) % n == i {
                continue;
            }
            let pair = (i.min(j), i.max(j));
            if found.is_some_and(|(a, b, _)| (a, b) <= pair) {
                continue;
            }
            if let Some(c) = contact(e.a, e.b, f.a, f.b) {
                found = Some((pair.0, pair.1, c));
            }
        }
    }
    let (i, j, kind) = found?;
    let verb = match kind {
        Contact::Cross => "crosses itself",
        Contact::Touch => "touches itself",
        Contact::Overlap => "overlaps itself (collinear edges)",
    };
    Some(format!(
        "{verb} between positions {}-{} and {}-{}",
        edges[i].from, edges[i].to, edges[j].from, edges[j].to
    ))
}

/// For `u`, `v`, `w` on one line, with `u` and `w` both different from `v`: whether `u` and `w`
/// lie on the same side of `v`.
fn same_side(u: Pt, v: Pt, w: Pt) -> bool {
    if u.x != v.x {
        u.x.total_cmp(&v.x) == w.x.total_cmp(&v.x)
    } else {
        u.y.total_cmp(&v.y) == w.y.total_cmp(&v.y)
    }
}

/// How segments `p1`-`p2` and `q1`-`q2` (each of positive length) meet, if they do.
fn contact(p1: Pt, p2: Pt, q1: Pt, q2: Pt) -> Option<Contact> {
    let o1 = orient(p1, p2, q1);
    let o2 = orient(p1, p2, q2);
    if o1 == 0 && o2 == 0 {
        // On one line: compare the stretches along the axis on which the line is not constant.
        let along = |p: Pt| if p1.x != p2.x { p.x } else { p.y };
        let (pa, pb) = min_max(along(p1), along(p2));
        let (qa, qb) = min_max(along(q1), along(q2));
        let (lo, hi) = (pa.max(qa), pb.min(qb));
        return match lo.partial_cmp(&hi) {
            Some(Ordering::Less) => Some(Contact::Overlap),
            Some(Ordering::Equal) => Some(Contact::Touch),
            _ => None,
        };
    }
    let o3 = orient(q1, q2, p1);
    let o4 = orient(q1, q2, p2);
    if o1 * o2 < 0 && o3 * o4 < 0 {
        return Some(Contact::Cross);
    }
    let touches = (o1 == 0 && within(p1, p2, q1))
        || (o2 == 0 && within(p1, p2, q2))
        || (o3 == 0 && within(q1, q2, p1))
        || (o4 == 0 && within(q1, q2, p2));
    touches.then_some(Contact::Touch)
}

fn min_max(a: f64, b: f64) -> (f64, f64) {
    if a <= b { (a, b) } else { (b, a) }
}

/// For `c` on the line through `a` and `b`: whether it lies on the segment `a`-`b`.
fn within(a: Pt, b: Pt, c: Pt) -> bool {
    a.x.min(b.x) <= c.x && c.x <= a.x.max(b.x) && a.y.min(b.y) <= c.y && c.y <= a.y.max(b.y)
}

/// Shewchuk's error bound for the floating-point orientation determinant below
/// (`ccwerrboundA` in "Adaptive Precision Floating-Point Arithmetic and Fast Robust Geometric
/// Predicates", 1997), with epsilon = 2^-53.
const ORIENT_ERROR_BOUND: f64 = (3.0 + 16.0 * (f64::EPSILON / 2.0)) * (f64::EPSILON / 2.0);

/// The sign of the orientation of `c` relative to the line `a`→`b`: 1 for a left turn, -1 for a
/// right turn, 0 when the three are on one line. Exact for the given f64 values (see
/// [`orient_exact`] for the one caveat).
fn orient(a: Pt, b: Pt, c: Pt) -> i8 {
    let left = (a.x - c.x) * (b.y - c.y);
    let right = (a.y - c.y) * (b.x - c.x);
    let det = left - right;
    let bound = ORIENT_ERROR_BOUND * (left.abs() + right.abs());
    if det > bound {
        1
    } else if det < -bound {
        -1
    } else {
        orient_exact(a, b, c)
    }
}

/// The orientation sign computed exactly, with expansion arithmetic: the determinant is written
/// as six products of coordinates, each product split exactly into two doubles with a fused
/// multiply-add, and the twelve parts summed without rounding into a non-overlapping
/// expansion, whose sign is the sign of its largest non-zero part. Exact unless a product
/// underflows, which needs a non-zero coordinate below about 1e-290 in magnitude.
fn orient_exact(a: Pt, b: Pt, c: Pt) -> i8 {
    let products = [
        (a.x, b.y),
        (-a.x, c.y),
        (-c.x, b.y),
        (-a.y, b.x),
        (a.y, c.x),
        (c.y, b.x),
    ];
    let mut expansion = [0.0f64; 12];
    let mut len = 0;
    for (p, q) in products {
        let hi = p * q;
        let lo = p.mul_add(q, -hi);
        for part in [lo, hi] {
            // Shewchuk's GROW-EXPANSION: add `part` exactly, keeping parts in increasing
            // magnitude and non-overlapping.
            let mut sum = part;
            for slot in expansion.iter_mut().take(len) {
                let (s, err) = two_sum(sum, *slot);
                *slot = err;
                sum = s;
            }
            expansion[len] = sum;
            len += 1;
        }
    }
    match expansion[..len].iter().rev().find(|v| **v != 0.0) {
        Some(v) if *v > 0.0 => 1,
        Some(_) => -1,
        None => 0,
    }
}

/// Knuth's TWO-SUM: `a + b` as a rounded sum and its exact rounding error.
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bv = s - a;
    let av = s - bv;
    (s, (a - av) + (b - bv))
}

/// The largest area, in hectares, for which EUDR accepts a single point instead of a polygon.
const POINT_MAX_HA: i64 = 4;

/// The number of decimal places EUDR asks for in each coordinate.
const EUDR_DECIMALS: i64 = 6;

/// Why a valid plot geometry is not EUDR-grade; empty when it is.
///
/// `geometry` is expected to have passed [`check_geometry`]; if it does not, the only reason
/// returned says why. `area_ha` is the plot's area in hectares and `country` its country of
/// production as an ISO 3166-1 alpha-2 code (case-insensitive). The reasons, each a sentence:
///
/// - **Precision.** EUDR asks for coordinates with at least 6 decimal places (Regulation (EU)
///   2023/1115, Art. 2(28) and Art. 9(1)(d); the Commission's geolocation guidance). A plot is
///   judged by the precision it was written with as a whole: the largest number of decimal
///   places among its longitudes and latitudes, as written. An ordinary JSON writer drops
///   trailing zeros (`70.705380` is written `70.70538`), so one value short of 6 says nothing;
///   every value short says something once there are enough of them. A plot whose largest
///   count `d` is under 6 is flagged when a writer of 6 decimals would write all its `n`
///   values that short less than once in a thousand plots: each value loses `6 - d` or more
///   trailing zeros one time in `10^(6-d)`, so it is flagged when `(6 - d) * n >= 3`. A point
///   (two values) at 5 decimals therefore passes and one at 4 or fewer does not; a polygon
///   (at least six distinct values) at 5 or fewer is flagged. Literals with an exponent count
///   the decimal places of the value they write (`1.2345678e1` is 12.345678, 6 places); an
///   integer has none. Elevations are not counted, nor the repeated closing position of a
///   ring. The reason gives the plot's precision and its count of values.
/// - **Point or polygon.** A Point (alone or in a Feature) is allowed only for a plot of at most
///   4 ha; exactly 4 ha is fine. A Point without an area is not EUDR-grade either, since nothing
///   shows it is small enough. Polygons need no area.
/// - **Country.** Every position must lie in `country` or within 1 km of its border, by
///   OpenStreetMap's country boundaries (the `country-boundaries` crate; data ODbL, ©
///   OpenStreetMap contributors). When the first position outside would be inside with
///   longitude and latitude exchanged, the reason says they look swapped. One reason at most,
///   naming the first position outside and how many are outside (the repeated closing position
///   of a ring is not counted twice). Countries the data does not have are not checked.
pub fn eudr_grade(geometry: &str, area_ha: Option<Decimal>, country: &str) -> Vec<String> {
    if let Err(e) = check_geometry(geometry) {
        return vec![format!("the geometry is not valid: {e}")];
    }
    let Some(shape) = raw::read(geometry) else {
        return vec!["the geometry's coordinates could not be read".into()];
    };
    let mut reasons = Vec::new();
    reasons.extend(precision_reason(&shape));
    reasons.extend(point_reason(&shape, area_ha));
    reasons.extend(country_reason(&shape, country));
    reasons
}

/// How many decimal places a JSON number literal is written to (see [`eudr_grade`]); negative
/// for literals like `1e3`.
fn decimal_places(literal: &str) -> i64 {
    let (mantissa, exponent) = match literal.find(['e', 'E']) {
        Some(i) => (&literal[..i], &literal[i + 1..]),
        None => (literal, ""),
    };
    let fraction = mantissa
        .split_once('.')
        .map_or(0, |(_, f)| f.bytes().filter(u8::is_ascii_digit).count());
    let fraction = i64::try_from(fraction).unwrap_or(i64::MAX);
    let (negative, digits) = match exponent.as_bytes().first() {
        Some(b'-') => (true, &exponent[1..]),
        Some(b'+') => (false, &exponent[1..]),
        _ => (false, exponent),
    };
    let magnitude = digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0i64, |acc, d| {
            acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if negative {
        fraction.saturating_add(magnitude)
    } else {
        fraction.saturating_sub(magnitude)
    }
}

fn precision_reason(shape: &raw::Shape<'_>) -> Option<String> {
    let values: Vec<&str> = distinct_positions(shape)
        .flat_map(|p| [p.lon, p.lat])
        .collect();
    // The first of the widest values, to name it.
    let (widest, most) = values
        .iter()
        .rev()
        .map(|literal| (decimal_places(literal), *literal))
        .max_by_key(|(places, _)| *places)?;
    if widest >= EUDR_DECIMALS {
        return None;
    }
    let short_by = EUDR_DECIMALS - widest;
    let n = i64::try_from(values.len()).unwrap_or(i64::MAX);
    if short_by.saturating_mul(n) < TRAILING_ZERO_ODDS {
        return None;
    }
    let widest = widest.max(0);
    Some(format!(
        "the plot is written to {widest} decimal places at most (its {n} coordinate values; the \
         widest is {most}): EUDR asks for {EUDR_DECIMALS}"
    ))
}

/// The decimal exponent of the odds (one in `10^3`) below which a plot's short values are taken
/// as written short rather than as trailing zeros a JSON writer dropped.
const TRAILING_ZERO_ODDS: i64 = 3;

/// A shape's positions, each ring's repeated closing position left out.
fn distinct_positions<'s, 'a>(
    shape: &'s raw::Shape<'a>,
) -> impl Iterator<Item = &'s raw::Position<'a>> {
    shape.rings.iter().flat_map(move |ring| {
        let distinct = if shape.is_point {
            ring.len()
        } else {
            ring.len().saturating_sub(1)
        };
        &ring[..distinct]
    })
}

fn point_reason(shape: &raw::Shape<'_>, area_ha: Option<Decimal>) -> Option<String> {
    if !shape.is_point {
        return None;
    }
    match area_ha {
        None => Some(format!(
            "a point plot needs its area (a point is allowed only up to {POINT_MAX_HA} ha)"
        )),
        Some(area) if area > Decimal::from(POINT_MAX_HA) => Some(format!(
            "a plot of {} ha needs a polygon; a point is allowed only up to {POINT_MAX_HA} ha",
            area.normalize()
        )),
        Some(_) => None,
    }
}

fn country_reason(shape: &raw::Shape<'_>, country: &str) -> Option<String> {
    let code = country.trim().to_ascii_uppercase();
    if !countries::known(&code) {
        return None;
    }
    let inside = |lon: f64, lat: f64| countries::contains(&code, lon, lat);
    let mut total = 0usize;
    let mut outside = 0usize;
    let mut first = None;
    for p in distinct_positions(shape) {
        total += 1;
        if !inside(p.x, p.y) {
            outside += 1;
            first.get_or_insert(p);
        }
    }
    let p = first?;
    let count = format!("{outside} of {total} positions outside");
    Some(if inside(p.y, p.x) {
        format!(
            "latitude and longitude look swapped: ({}, {}) is outside {code} but ({}, {}) is \
             inside ({count})",
            p.lon, p.lat, p.lat, p.lon
        )
    } else {
        format!(
            "position ({}, {}) is outside {code}, more than {} km from its border ({count})",
            p.lon,
            p.lat,
            countries::TOLERANCE_KM
        )
    })
}

/// A small reader for the JSON text of a geometry that keeps every number as written, which
/// f64 cannot (`7.50` and `7.5` parse to the same value). The domain crate has no JSON
/// library that keeps number text, so this one reads just enough JSON for [`eudr_grade`].
mod raw {
    /// The positions of a Point, Polygon or MultiPolygon: one ring holding the point, or every
    /// ring of every polygon in order.
    pub(super) struct Shape<'a> {
        pub is_point: bool,
        pub rings: Vec<Vec<Position<'a>>>,
    }

    /// A position's longitude and latitude, as written and as values.
    pub(super) struct Position<'a> {
        pub lon: &'a str,
        pub lat: &'a str,
        pub x: f64,
        pub y: f64,
    }

    /// Reads a GeoJSON geometry, or a Feature holding one; `None` if the text is not one.
    pub(super) fn read(text: &str) -> Option<Shape<'_>> {
        let mut reader = Reader { text, at: 0 };
        let root = reader.value(0)?;
        reader.skip_space();
        if reader.at != text.len() {
            return None;
        }
        let geometry = match root.member("type")?.as_str()? {
            "Feature" => root.member("geometry")?,
            _ => &root,
        };
        let coordinates = geometry.member("coordinates")?;
        match geometry.member("type")?.as_str()? {
            "Point" => Some(Shape {
                is_point: true,
                rings: vec![vec![position(coordinates)?]],
            }),
            "Polygon" => Some(Shape {
                is_point: false,
                rings: rings(coordinates)?,
            }),
            "MultiPolygon" => {
                let mut all = Vec::new();
                for polygon in coordinates.as_array()? {
                    all.extend(rings(polygon)?);
                }
                Some(Shape {
                    is_point: false,
                    rings: all,
                })
            }
            _ => None,
        }
    }

    fn rings<'a>(polygon: &Json<'a>) -> Option<Vec<Vec<Position<'a>>>> {
        polygon
            .as_array()?
            .iter()
            .map(|ring| ring.as_array()?.iter().map(position).collect())
            .collect()
    }

    fn position<'a>(value: &Json<'a>) -> Option<Position<'a>> {
        match value.as_array()? {
            [Json::Number(lon), Json::Number(lat), ..] => Some(Position {
                lon,
                lat,
                x: lon.parse().ok()?,
                y: lat.parse().ok()?,
            }),
            _ => None,
        }
    }

    /// A JSON value; numbers keep their text, and strings are unescaped.
    enum Json<'a> {
        Number(&'a str),
        String(String),
        Array(Vec<Json<'a>>),
        Object(Vec<(String, Json<'a>)>),
        /// `true`, `false` or `null`.
        Literal,
    }

    impl<'a> Json<'a> {
        /// The value of `key` in an object; the last one wins if the key repeats, as in serde_json.
        fn member(&self, key: &str) -> Option<&Json<'a>> {
            match self {
                Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|m| &m.1),
                _ => None,
            }
        }

        fn as_str(&self) -> Option<&str> {
            match self {
                Json::String(s) => Some(s),
                _ => None,
            }
        }

        fn as_array(&self) -> Option<&[Json<'a>]> {
            match self {
                Json::Array(items) => Some(items),
                _ => None,
            }
        }
    }

    /// Nesting deeper than this is refused (serde_json's own limit is 128).
    const MAX_DEPTH: usize = 256;

    struct Reader<'a> {
        text: &'a str,
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn peek(&self) -> Option<u8> {
            self.text.as_bytes().get(self.at).copied()
        }

        fn skip_space(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.at += 1;
            }
        }

        fn expect(&mut self, byte: u8) -> Option<()> {
            self.skip_space();
            (self.peek()? == byte).then(|| self.at += 1)
        }

        fn value(&mut self, depth: usize) -> Option<Json<'a>> {
            if depth > MAX_DEPTH {
                return None;
            }
            self.skip_space();
            match self.peek()? {
                b'{' => self.object(depth),
                b'[' => self.array(depth),
                b'"' => self.string().map(Json::String),
                b'-' | b'0'..=b'9' => Some(self.number()),
                b't' => self.word("true"),
                b'f' => self.word("false"),
                b'n' => self.word("null"),
                _ => None,
            }
        }

        fn word(&mut self, word: &str) -> Option<Json<'a>> {
            self.text[self.at..].starts_with(word).then(|| {
                self.at += word.len();
                Json::Literal
            })
        }

        fn number(&mut self) -> Json<'a> {
            let start = self.at;
            while matches!(
                self.peek(),
                Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            ) {
                self.at += 1;
            }
            Json::Number(&self.text[start..self.at])
        }

        fn array(&mut self, depth: usize) -> Option<Json<'a>> {
            self.expect(b'[')?;
            let mut items = Vec::new();
            self.skip_space();
            if self.peek()? == b']' {
                self.at += 1;
                return Some(Json::Array(items));
            }
            loop {
                items.push(self.value(depth + 1)?);
                self.skip_space();
                match self.peek()? {
                    b',' => self.at += 1,
                    b']' => {
                        self.at += 1;
                        return Some(Json::Array(items));
                    }
                    _ => return None,
                }
            }
        }

        fn object(&mut self, depth: usize) -> Option<Json<'a>> {
            self.expect(b'{')?;
            let mut members = Vec::new();
            self.skip_space();
            if self.peek()? == b'}' {
                self.at += 1;
                return Some(Json::Object(members));
            }
            loop {
                self.skip_space();
                let key = self.string()?;
                self.expect(b':')?;
                members.push((key, self.value(depth + 1)?));
                self.skip_space();
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        return Some(Json::Object(members));
                    }
                    _ => return None,
                }
            }
        }

        /// Reads a string literal and returns it unescaped.
        fn string(&mut self) -> Option<String> {
            self.expect(b'"')?;
            let mut out = String::new();
            let mut chars = self.text[self.at..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.at += i + 1;
                        return Some(out);
                    }
                    '\\' => {
                        let (_, e) = chars.next()?;
                        out.push(match e {
                            '"' => '"',
                            '\\' => '\\',
                            '/' => '/',
                            'b' => '\u{8}',
                            'f' => '\u{c}',
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'u' => {
                                let unit = hex4(&mut chars)?;
                                if (0xD800..0xDC00).contains(&unit) {
                                    // A high surrogate must be followed by an escaped low one.
                                    let (_, b) = chars.next()?;
                                    let (_, u) = chars.next()?;
                                    let low = hex4(&mut chars)?;
                                    if b != '\\' || u != 'u' || !(0xDC00..0xE000).contains(&low) {
                                        return None;
                                    }
                                    char::from_u32(
                                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00),
                                    )?
                                } else {
                                    char::from_u32(unit)?
                                }
                            }
                            _ => return None,
                        });
                    }
                    c => out.push(c),
                }
            }
            None
        }
    }

    fn hex4(chars: &mut std::str::CharIndices<'_>) -> Option<u32> {
        let mut unit = 0;
        for _ in 0..4 {
            unit = unit * 16 + chars.next()?.1.to_digit(16)?;
        }
        Some(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_points_and_closed_polygons() {
        assert!(check_geometry(r#"{"type":"Point","coordinates":[108.051234,12.671234]}"#).is_ok());
        let poly = r#"{"type":"Polygon","coordinates":[[[108.0,12.6],[108.1,12.6],[108.1,12.7],[108.0,12.6]]]}"#;
        assert!(check_geometry(poly).is_ok());
    }

    #[test]
    fn rejects_what_is_not_on_earth_or_not_geojson() {
        assert!(check_geometry("not json").unwrap_err().contains("GeoJSON"));
        let off = r#"{"type":"Point","coordinates":[200.0,12.6]}"#;
        assert!(check_geometry(off).unwrap_err().contains("longitude"));
        let open = r#"{"type":"Polygon","coordinates":[[[108.0,12.6],[108.1,12.6],[108.1,12.7],[108.0,12.7]]]}"#;
        assert!(check_geometry(open).unwrap_err().contains("not closed"));
        let line = r#"{"type":"LineString","coordinates":[[108.0,12.6],[108.1,12.6]]}"#;
        assert!(check_geometry(line).unwrap_err().contains("not allowed"));
    }

    /// The JSON of one position, `[x,y]`, with every digit of each value.
    fn position(&(x, y): &(f64, f64)) -> String {
        format!("[{x:?},{y:?}]")
    }

    /// A ring's JSON; the first position is repeated at the end to close it.
    fn ring(points: &[(f64, f64)]) -> String {
        let mut positions: Vec<String> = points.iter().map(position).collect();
        positions.push(position(&points[0]));
        format!("[{}]", positions.join(","))
    }

    /// A Polygon with one ring, closed for you.
    fn polygon(points: &[(f64, f64)]) -> String {
        format!(r#"{{"type":"Polygon","coordinates":[{}]}}"#, ring(points))
    }

    fn pt(x: f64, y: f64) -> Pt {
        Pt { x, y }
    }

    const SQUARE: [(f64, f64); 4] = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
    const BOW_TIE: [(f64, f64); 4] = [(0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0)];

    #[test]
    fn a_bow_tie_is_rejected_naming_the_crossing_edges() {
        assert_eq!(
            check_geometry(&polygon(&BOW_TIE)).unwrap_err(),
            "ring 1 crosses itself between positions 1-2 and 3-4"
        );
    }

    #[test]
    fn a_concave_polygon_is_accepted() {
        let arrow = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (2.0, 1.0), (0.0, 4.0)];
        assert_eq!(check_geometry(&polygon(&arrow)), Ok(()));
        // A concave vertex that comes close to, but does not reach, the opposite edge.
        let notch = [
            (0.0, 0.0),
            (4.0, 0.0),
            (4.0, 4.0),
            (2.0, 0.000001),
            (0.0, 4.0),
        ];
        assert_eq!(check_geometry(&polygon(&notch)), Ok(()));
    }

    #[test]
    fn a_ring_touching_itself_at_a_vertex_is_rejected() {
        // Two squares that share the corner (1, 1), visited twice (positions 3 and 7).
        let two_squares = [
            (0.0, 0.0),
            (1.0, 0.0),
            (1.0, 1.0),
            (2.0, 1.0),
            (2.0, 2.0),
            (1.0, 2.0),
            (1.0, 1.0),
            (0.0, 1.0),
        ];
        assert_eq!(
            check_geometry(&polygon(&two_squares)).unwrap_err(),
            "ring 1 touches itself between positions 2-3 and 6-7"
        );
        // A vertex, (2, 0), that lies inside a non-neighbouring edge.
        let pinched = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (2.0, 0.0), (0.0, 4.0)];
        assert_eq!(
            check_geometry(&polygon(&pinched)).unwrap_err(),
            "ring 1 touches itself between positions 1-2 and 3-4"
        );
    }

    #[test]
    fn collinear_overlapping_edges_are_rejected() {
        // Edge 5-6, from (4, 0) back to (1, 0), runs along part of edge 1-2.
        let overlap = [
            (0.0, 0.0),
            (2.0, 0.0),
            (2.0, 1.0),
            (4.0, 1.0),
            (4.0, 0.0),
            (1.0, 0.0),
            (1.0, -1.0),
            (0.0, -1.0),
        ];
        assert_eq!(
            check_geometry(&polygon(&overlap)).unwrap_err(),
            "ring 1 overlaps itself (collinear edges) between positions 1-2 and 5-6"
        );
        assert_eq!(
            contact(pt(0.0, 0.0), pt(2.0, 0.0), pt(3.0, 0.0), pt(1.0, 0.0)),
            Some(Contact::Overlap)
        );
        assert_eq!(
            contact(pt(0.0, 0.0), pt(2.0, 0.0), pt(2.0, 0.0), pt(3.0, 0.0)),
            Some(Contact::Touch)
        );
        assert_eq!(
            contact(pt(0.0, 0.0), pt(2.0, 0.0), pt(2.5, 0.0), pt(3.0, 0.0)),
            None
        );
    }

    #[test]
    fn neighbouring_edges_that_fold_back_are_rejected() {
        // A spike: up to (2, 3), then back down over the same line to (2, 1).
        let spike = [
            (0.0, 0.0),
            (2.0, 0.0),
            (2.0, 2.0),
            (2.0, 3.0),
            (2.0, 1.0),
            (0.0, 2.0),
        ];
        assert_eq!(
            check_geometry(&polygon(&spike)).unwrap_err(),
            "ring 1 doubles back on itself at position 4: edges 3-4 and 4-5 overlap"
        );
        // Three distinct positions on one line enclose nothing.
        let flat = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)];
        assert_eq!(
            check_geometry(&polygon(&flat)).unwrap_err(),
            "ring 1 doubles back on itself at position 3: edges 2-3 and 3-4 overlap"
        );
        // Going straight on through a vertex is fine.
        let straight_through = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.0, 2.0)];
        assert_eq!(check_geometry(&polygon(&straight_through)), Ok(()));
    }

    #[test]
    fn a_ring_with_fewer_than_three_distinct_positions_is_rejected() {
        let text =
            r#"{"type":"Polygon","coordinates":[[[1.0,1.0],[2.0,2.0],[1.0,1.0],[1.0,1.0]]]}"#;
        assert_eq!(
            check_geometry(text).unwrap_err(),
            "ring 1 is degenerate: it has 2 distinct positions, a polygon needs at least 3"
        );
    }

    #[test]
    fn repeated_consecutive_positions_are_skipped() {
        let text =
            r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,0],[1,1],[0,1],[0,1],[0,0]]]}"#;
        assert_eq!(check_geometry(text), Ok(()));
        // Edges are named by the positions as written, around the repeated one.
        let text = r#"{"type":"Polygon","coordinates":[[[0,0],[0,0],[2,2],[2,0],[0,2],[0,0]]]}"#;
        assert_eq!(
            check_geometry(text).unwrap_err(),
            "ring 1 crosses itself between positions 2-3 and 4-5"
        );
    }

    #[test]
    fn a_crossing_hole_is_named_by_its_ring() {
        let big = [(-5.0, -5.0), (5.0, -5.0), (5.0, 5.0), (-5.0, 5.0)];
        let text = format!(
            r#"{{"type":"Polygon","coordinates":[{},{}]}}"#,
            ring(&big),
            ring(&BOW_TIE)
        );
        assert_eq!(
            check_geometry(&text).unwrap_err(),
            "ring 2 crosses itself between positions 1-2 and 3-4"
        );
    }

    #[test]
    fn a_multipolygon_with_one_bad_polygon_is_rejected_naming_it() {
        let text = format!(
            r#"{{"type":"MultiPolygon","coordinates":[[{}],[{}]]}}"#,
            ring(&SQUARE),
            ring(&BOW_TIE)
        );
        assert_eq!(
            check_geometry(&text).unwrap_err(),
            "ring 1 of polygon 2 crosses itself between positions 1-2 and 3-4"
        );
        let text = format!(
            r#"{{"type":"MultiPolygon","coordinates":[[{}],[[[0,0],[1,0],[0,0]]]]}}"#,
            ring(&SQUARE)
        );
        assert_eq!(
            check_geometry(&text).unwrap_err(),
            "ring 1 of polygon 2 needs at least 4 positions, got 3"
        );
    }

    /// A closed ring of `n` positions around (`lon`, `lat`), written with 6 decimals.
    fn circle(lon: f64, lat: f64, radius: f64, n: usize) -> String {
        let positions: Vec<String> = (0..=n)
            .map(|i| {
                let angle = std::f64::consts::TAU * (i % n) as f64 / n as f64;
                let x = lon + radius * angle.cos();
                let y = lat + radius * angle.sin();
                format!("[{x:.6},{y:.6}]")
            })
            .collect();
        format!(
            r#"{{"type":"Polygon","coordinates":[[{}]]}}"#,
            positions.join(",")
        )
    }

    #[test]
    fn a_five_thousand_vertex_circle_is_accepted() {
        let text = circle(108.05, 12.67, 0.05, 5000);
        assert_eq!(check_geometry(&text), Ok(()));
        assert_eq!(eudr_grade(&text, None, "VN"), Vec::<String>::new());
    }

    #[test]
    fn orientation_is_exact_near_collinear() {
        // The classic trap: a point nudged by a few ulps off the line through (12, 12) and
        // (24, 24). Scaled by 2^53 every coordinate is an integer, so i128 gives the truth.
        let ulp = f64::EPSILON / 2.0; // the spacing of f64 values just above 0.5
        let scale = 2f64.powi(53);
        let (b, c) = (pt(12.0, 12.0), pt(24.0, 24.0));
        let exact = |a: Pt| {
            let i = |v: f64| (v * scale) as i128;
            let det = (i(a.x) - i(c.x)) * (i(b.y) - i(c.y)) - (i(a.y) - i(c.y)) * (i(b.x) - i(c.x));
            det.signum() as i8
        };
        for kx in 0..48 {
            for ky in 0..48 {
                let a = pt(0.5 + f64::from(kx) * ulp, 0.5 + f64::from(ky) * ulp);
                assert_eq!(orient(a, b, c), exact(a), "kx {kx}, ky {ky}");
            }
        }
    }

    /// A Point with the two literals as written.
    fn point(lon: &str, lat: &str) -> String {
        format!(r#"{{"type":"Point","coordinates":[{lon},{lat}]}}"#)
    }

    fn ha(text: &str) -> Option<Decimal> {
        Some(text.parse().expect("a decimal"))
    }

    #[test]
    fn a_plot_is_judged_by_its_widest_value() {
        // Trailing zeros a JSON writer dropped: the plot is still written to 6 places.
        assert!(eudr_grade(&point("-5.5", "7.512345"), ha("1"), "CI").is_empty());
        assert!(eudr_grade(&point("-5.500000", "7.512345"), ha("1"), "CI").is_empty());
        // A point at 5 places: a 6-place writer writes one in a hundred points so.
        assert!(eudr_grade(&point("-5.51234", "7.51234"), ha("1"), "CI").is_empty());
        assert_eq!(
            eudr_grade(&point("-5.5123", "7.51"), ha("1"), "CI"),
            [
                "the plot is written to 4 decimal places at most (its 2 coordinate values; the widest is -5.5123): EUDR asks for 6"
            ]
        );
        let square = r#"{"type":"Polygon","coordinates":[[[108.05,12.670000],[108.060000,12.670000],[108.060000,12.68],[108.05,12.670000]]]}"#;
        assert!(eudr_grade(square, None, "VN").is_empty());
        // A polygon of six values at 5 places is one in a million of a 6-place writer's.
        let short = r#"{"type":"Polygon","coordinates":[[[108.05001,12.67001],[108.06001,12.67],[108.06,12.68001],[108.05001,12.67001]]]}"#;
        assert_eq!(
            eudr_grade(short, None, "VN"),
            [
                "the plot is written to 5 decimal places at most (its 6 coordinate values; the widest is 108.05001): EUDR asks for 6"
            ]
        );
    }

    #[test]
    fn plots_of_a_six_place_writer_pass_and_truncated_ones_do_not() {
        // Every value written as a stock JSON writer writes an f64 of 6 places.
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut flagged = 0;
        for _ in 0..20_000 {
            let lon = -7.5 + (next() % 2_000_000) as f64 / 1e6;
            let lat = 6.0 + (next() % 2_000_000) as f64 / 1e6;
            let at = |x: f64| format!("{}", (x * 1e6).round() / 1e6);
            if !eudr_grade(&point(&at(lon), &at(lat)), ha("1"), "CI").is_empty() {
                flagged += 1;
            }
            let truncated = |x: f64| format!("{:.3}", x);
            assert_eq!(
                eudr_grade(&point(&truncated(lon), &truncated(lat)), ha("1"), "CI").len(),
                1
            );
        }
        // One point in 10 000 has both values 4 places short; 20 000 give about 2.
        assert!(flagged <= 8, "{flagged} of 20 000 six-place points flagged");
    }

    #[test]
    fn integer_coordinates_are_flagged() {
        assert_eq!(
            eudr_grade(&point("-5", "7"), ha("1"), "CI"),
            [
                "the plot is written to 0 decimal places at most (its 2 coordinate values; the widest is -5): EUDR asks for 6"
            ]
        );
    }

    #[test]
    fn exponents_count_the_decimal_places_of_the_value_written() {
        assert_eq!(decimal_places("7"), 0);
        assert_eq!(decimal_places("-0.123456"), 6);
        assert_eq!(decimal_places("1.2345678e1"), 6);
        assert_eq!(decimal_places("1.234567E+1"), 5);
        assert_eq!(decimal_places("5e-7"), 7);
        assert_eq!(decimal_places("1e-5"), 5);
        assert_eq!(decimal_places("1.5e3"), -2);
        assert!(eudr_grade(&point("-5.5e-0", "7.5e0"), ha("1"), "CI").len() == 1);
        assert!(eudr_grade(&point("-55.123456e-1", "75.123456e-1"), ha("1"), "CI").is_empty());
    }

    #[test]
    fn a_point_is_allowed_up_to_exactly_4_ha() {
        let farm = point("-5.512345", "7.512345");
        assert!(eudr_grade(&farm, ha("4"), "CI").is_empty());
        assert!(eudr_grade(&farm, ha("4.000"), "CI").is_empty());
        assert_eq!(
            eudr_grade(&farm, ha("4.000001"), "CI"),
            ["a plot of 4.000001 ha needs a polygon; a point is allowed only up to 4 ha"]
        );
        assert_eq!(
            eudr_grade(&farm, ha("6.50"), "CI"),
            ["a plot of 6.5 ha needs a polygon; a point is allowed only up to 4 ha"]
        );
    }

    #[test]
    fn a_point_without_an_area_is_flagged_but_a_polygon_is_not() {
        assert_eq!(
            eudr_grade(&point("-5.512345", "7.512345"), None, "CI"),
            ["a point plot needs its area (a point is allowed only up to 4 ha)"]
        );
        let square =
            r#"{"type":"Polygon","coordinates":[[[-5.5,7.5],[-5.4,7.5],[-5.4,7.6],[-5.5,7.5]]]}"#
                .replace(".5,", ".500000,")
                .replace(".4,", ".400000,")
                .replace(".5]", ".500000]")
                .replace(".6]", ".600000]");
        assert!(eudr_grade(&square, None, "CI").is_empty(), "{square}");
        assert!(eudr_grade(&square, ha("250"), "CI").is_empty());
    }

    #[test]
    fn a_point_in_a_feature_is_still_a_point() {
        let feature = r#"{"type":"Feature","properties":{"coordinates":[1,2],"type":"Point"},
            "geometry":{"type":"Point","coordinates":[-5.512345, 7.512345]}}"#;
        assert!(eudr_grade(feature, ha("2"), "CI").is_empty());
        assert_eq!(
            eudr_grade(feature, ha("5"), "CI"),
            ["a plot of 5 ha needs a polygon; a point is allowed only up to 4 ha"]
        );
    }

    #[test]
    fn a_ci_point_inside_ci_is_accepted() {
        assert!(eudr_grade(&point("-5.500000", "7.500000"), ha("2"), "CI").is_empty());
        assert!(eudr_grade(&point("-5.500000", "7.500000"), ha("2"), " ci ").is_empty());
    }

    #[test]
    fn a_ci_point_given_as_lat_lon_is_reported_swapped() {
        assert_eq!(
            eudr_grade(&point("7.500000", "-5.500000"), ha("2"), "CI"),
            [
                "latitude and longitude look swapped: (7.500000, -5.500000) is outside CI but \
                 (-5.500000, 7.500000) is inside (1 of 1 positions outside)"
            ]
        );
    }

    #[test]
    fn a_vn_point_claimed_as_gh_is_outside() {
        assert_eq!(
            eudr_grade(&point("108.050000", "12.670000"), ha("2"), "GH"),
            [
                "position (108.050000, 12.670000) is outside GH, more than 1 km from its border (1 of 1 positions outside)"
            ]
        );
        // A ring's closing position is counted once.
        let text = circle(108.05, 12.67, 0.01, 8);
        let reasons = eudr_grade(&text, None, "GH");
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].ends_with("more than 1 km from its border (8 of 8 positions outside)"));
    }

    #[test]
    fn an_unknown_country_is_not_checked() {
        assert!(eudr_grade(&point("108.050000", "12.670000"), ha("2"), "XX").is_empty());
        assert!(eudr_grade(&point("108.050000", "12.670000"), ha("2"), "").is_empty());
    }

    #[test]
    fn all_reasons_are_given_together_and_an_invalid_geometry_gets_one() {
        let reasons = eudr_grade(&point("7.5", "-5.5"), None, "CI");
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        let reasons = eudr_grade(&polygon(&BOW_TIE), None, "CI");
        assert_eq!(
            reasons,
            ["the geometry is not valid: ring 1 crosses itself between positions 1-2 and 3-4"]
        );
    }

    #[test]
    fn known_farms_are_inside_their_countries() {
        let farms = [
            ("CI", -5.5, 7.5),     // Côte d'Ivoire, cocoa belt
            ("VN", 108.05, 12.67), // Central Highlands, Đắk Lắk
            ("BR", -45.9, -21.2),  // Sul de Minas, Minas Gerais
            ("ET", 38.5, 6.7),     // Sidama
            ("IN", 72.6, 22.3),    // Gujarat
            ("GH", -1.6, 6.7),     // Ashanti, Kumasi
            ("CO", -75.6, 4.8),    // Eje Cafetero
            ("ID", 98.7, 3.6),     // Sumatra, Medan
            ("UZ", 69.3, 41.3),    // Tashkent
            ("US", -99.9, 31.9),   // Texas cotton
            ("US", -155.9, 19.6),  // Kona, Hawaii
            ("ES", -15.6, 28.1),   // Gran Canaria
            ("PT", -16.9, 32.7),   // Madeira
            ("EC", -90.4, -0.7),   // Santa Cruz, Galápagos
        ];
        for (code, lon, lat) in farms {
            assert!(countries::known(code), "{code}");
            assert!(countries::contains(code, lon, lat), "{code} ({lon}, {lat})");
        }
        // And a few that are clearly elsewhere.
        let elsewhere = [("CI", 108.05, 12.67), ("BR", -5.5, 7.5), ("VN", 38.5, 6.7)];
        for (code, lon, lat) in elsewhere {
            assert!(
                !countries::contains(code, lon, lat),
                "{code} ({lon}, {lat})"
            );
        }
    }

    #[test]
    fn outlines_draw_points_and_outer_rings_and_nothing_else() {
        let polygon = r#"{"type":"Feature","properties":{"farmer":"x"},"geometry":{"type":"Polygon","coordinates":[[[1,2],[3,2],[3,4],[1,2]],[[1.5,2.5],[2,2.5],[2,3],[1.5,2.5]]]}}"#;
        assert_eq!(
            outlines(polygon),
            vec![vec![(1.0, 2.0), (3.0, 2.0), (3.0, 4.0), (1.0, 2.0)]]
        );
        assert_eq!(
            outlines(r#"{"type":"Point","coordinates":[-3.5,6.7]}"#),
            vec![vec![(-3.5, 6.7)]]
        );
        let multi = r#"{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,5]]]]}"#;
        assert_eq!(outlines(multi).len(), 2);
        assert!(outlines("").is_empty());
        assert!(outlines(r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#).is_empty());
    }

    #[test]
    fn a_country_mask_covers_its_country_and_not_its_neighbour() {
        // A box across the border of Côte d'Ivoire (west) and Ghana (east), 8 × 4 cells.
        let bbox = (-4.5, 6.0, -1.5, 8.0);
        let ci = country_mask("ci", bbox, 8, 4).expect("the data has CI");
        let gh = country_mask("GH", bbox, 8, 4).expect("the data has GH");
        // The west column is Ivorian, the east column Ghanaian, and no cell is both.
        for row in 0..4 {
            assert!(ci[row * 8] && !gh[row * 8], "row {row}, west");
            assert!(gh[row * 8 + 7] && !ci[row * 8 + 7], "row {row}, east");
        }
        assert!(ci.iter().zip(&gh).all(|(a, b)| !(*a && *b)));
        assert_eq!(country_mask("XX", bbox, 8, 4), None);
    }

    #[test]
    fn a_country_box_holds_the_country() {
        // Côte d'Ivoire lies within about 8.6°W–2.5°W, 4.3°N–10.8°N (its waters reach further
        // south).
        let (w, s, e, n) = country_bbox("CI").expect("the data has CI");
        assert!((-9.2..-8.2).contains(&w), "{w}");
        assert!((-3.0..-2.0).contains(&e), "{e}");
        assert!((3.3..4.8).contains(&s), "{s}");
        assert!((10.3..11.3).contains(&n), "{n}");
        assert_eq!(country_bbox("XX"), None);
    }

    #[test]
    fn the_boundary_data_has_every_producing_country() {
        let required = "CI GH NG CM TG BJ LR SL GN BF ML SN UG KE ET RW BI TZ CD MG MZ ZM MW ZW ZA \
            EG SD IN PK BD LK NP CN VN LA KH TH MM MY ID PH PG TL AU UZ TM TJ KG KZ TR IR SY GR ES \
            PT FR DE IT NL BE CH GB PL US MX GT HN SV NI CR PA CU DO HT JM CO EC PE BO BR PY AR VE";
        for code in required.split_whitespace() {
            assert!(countries::known(code), "{code} is missing");
        }
        assert!(!countries::known("XX"));
    }

    #[test]
    fn a_plot_across_a_border_of_the_cocoa_belt_is_caught_beyond_a_kilometre() {
        // Abengourou, Côte d'Ivoire, 30 km from Ghana; and Sunyani, Ghana, 60 km from
        // Côte d'Ivoire: each in its own country, each outside the other.
        let (ci, gh) = ((-3.4964, 6.7297), (-2.3267, 7.3399));
        assert!(countries::contains("CI", ci.0, ci.1));
        assert!(!countries::contains("GH", ci.0, ci.1));
        assert!(countries::contains("GH", gh.0, gh.1));
        assert!(!countries::contains("CI", gh.0, gh.1));
        // East from Abengourou in steps of 100 m to the border, by the data alone.
        let km = 1.0 / (111.32 * ci.1.to_radians().cos());
        let mut border = ci.0;
        while countries::within("CI", border, ci.1, 0.0) {
            border += 0.1 * km;
            assert!(border < 0.0, "never left CI");
        }
        let plot = |lon: f64| point(&format!("{lon:.6}"), &format!("{:.6}", ci.1));
        assert!(countries::within("GH", border + 1.5 * km, ci.1, 0.0));
        assert!(eudr_grade(&plot(border + 0.5 * km), ha("1"), "CI").is_empty());
        let reasons = eudr_grade(&plot(border + 1.5 * km), ha("1"), "CI");
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("is outside CI"), "{reasons:?}");
        assert!(eudr_grade(&plot(border + 1.5 * km), ha("1"), "GH").is_empty());
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn a_geometry_above_the_position_limit_is_rejected_by_its_size() {
        let n = MAX_POSITIONS + 10;
        let ring: Vec<String> = (0..n)
            .map(|i| {
                let a = std::f64::consts::TAU * i as f64 / n as f64;
                format!("[{:.6},{:.6}]", 10.0 + a.cos(), 10.0 + a.sin())
            })
            .chain(std::iter::once("[11.000000,10.000000]".to_string()))
            .collect();
        let text = format!(
            r#"{{"type":"Polygon","coordinates":[[{}]]}}"#,
            ring.join(",")
        );
        let err = check_geometry(&text).expect_err("too large");
        assert!(err.contains("at most 20000 positions"), "{err}");
    }
}
