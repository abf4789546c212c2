//! Plot geometry checks: GeoJSON in WGS84 (longitude, latitude), as EUDR asks.

use geojson::{GeoJson, Value};

/// Checks that `text` is a GeoJSON Point, Polygon or MultiPolygon geometry on Earth:
/// every position has a longitude in [-180, 180] and a latitude in [-90, 90], and
/// every polygon ring has at least four positions and is closed.
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
    match &geometry.value {
        Value::Point(p) => check_position(p),
        Value::Polygon(rings) => check_polygon(rings),
        Value::MultiPolygon(polys) => {
            if polys.is_empty() {
                return Err("MultiPolygon has no polygons".into());
            }
            polys.iter().try_for_each(|p| check_polygon(p))
        }
        other => Err(format!(
            "geometry type {} is not allowed for a plot (Point, Polygon or MultiPolygon)",
            other.type_name()
        )),
    }
}

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

fn check_polygon(rings: &[Vec<Vec<f64>>]) -> Result<(), String> {
    if rings.is_empty() {
        return Err("Polygon has no rings".into());
    }
    for ring in rings {
        if ring.len() < 4 {
            return Err(format!(
                "a polygon ring needs at least 4 positions, got {}",
                ring.len()
            ));
        }
        ring.iter().try_for_each(|p| check_position(p))?;
        if ring.first() != ring.last() {
            return Err("a polygon ring is not closed (first and last positions differ)".into());
        }
    }
    Ok(())
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
}
