//! The map of a lot's origin plots, drawn by lotline as inline SVG: no map library, no tiles, no
//! request to anyone. The plots' bounding box (with a margin) is drawn in an equirectangular
//! projection scaled by the cosine of its middle latitude, so shapes keep their proportions at
//! the scale of a region; the countries the plots are in are shaded from the boundary data of
//! the country check (`lotline_domain::geo::country_mask`), with a scale bar in kilometres.

use std::fmt::Write;

use lotline_domain::geo::{country_bbox, country_mask, outlines};
use maud::{Markup, html};

/// The drawing's size in SVG units (it scales to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 400.0;
/// Cells of the country shading across and down.
const COLS: usize = 120;
const ROWS: usize = 80;
/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.32;

/// A ring of positions (longitude, latitude); one position for a point.
type Ring = Vec<(f64, f64)>;

/// One plot to draw.
pub(crate) struct MapPlot {
    pub id: String,
    pub country: String,
    /// GeoJSON as the caller's view shows it (empty when generalised away).
    pub geometry: String,
    /// Whether the EUDR assessment found something wrong with it.
    pub issue: bool,
}

/// The projection of the drawing: degrees to SVG units.
struct Frame {
    west: f64,
    north: f64,
    /// Units per degree of latitude; a degree of longitude is `scale * cos`.
    scale: f64,
    cos: f64,
}

impl Frame {
    /// A frame of the drawing's proportions around every position, with a margin.
    fn around(positions: impl Iterator<Item = (f64, f64)>) -> Option<Frame> {
        let (mut west, mut south, mut east, mut north) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (lon, lat) in positions {
            west = west.min(lon);
            east = east.max(lon);
            south = south.min(lat);
            north = north.max(lat);
        }
        if west > east {
            return None;
        }
        let cos = ((south + north) / 2.0).to_radians().cos().max(0.05);
        // A margin of a tenth on each side, and at least about 2 km across.
        let span_lat = ((north - south) * 1.2).max(0.02);
        let span_lon = ((east - west) * 1.2).max(0.02 / cos);
        let (mid_lon, mid_lat) = ((west + east) / 2.0, (south + north) / 2.0);
        // Widen whichever side is short of the drawing's proportions.
        let scale = (WIDTH / (span_lon * cos)).min(HEIGHT / span_lat);
        let half_lon = WIDTH / scale / cos / 2.0;
        let half_lat = HEIGHT / scale / 2.0;
        Some(Frame {
            west: mid_lon - half_lon,
            north: mid_lat + half_lat,
            scale,
            cos,
        })
    }

    fn x(&self, lon: f64) -> f64 {
        (lon - self.west) * self.cos * self.scale
    }

    fn y(&self, lat: f64) -> f64 {
        (self.north - lat) * self.scale
    }

    fn bbox(&self) -> (f64, f64, f64, f64) {
        let east = self.west + WIDTH / self.scale / self.cos;
        let south = self.north - HEIGHT / self.scale;
        (self.west, south, east, self.north)
    }

    /// Kilometres per SVG unit.
    fn km_per_unit(&self) -> f64 {
        KM_PER_DEGREE / self.scale
    }
}

/// The shading of `country` in `frame`: one path of the rows of cells inside it.
fn country_path(frame: &Frame, country: &str) -> Option<String> {
    let mask = country_mask(country, frame.bbox(), COLS, ROWS)?;
    let (cw, ch) = (WIDTH / COLS as f64, HEIGHT / ROWS as f64);
    let mut d = String::new();
    for row in 0..ROWS {
        let mut col = 0;
        while col < COLS {
            if !mask[row * COLS + col] {
                col += 1;
                continue;
            }
            let start = col;
            while col < COLS && mask[row * COLS + col] {
                col += 1;
            }
            let _ = write!(
                d,
                "M{:.1} {:.1}h{:.1}v{:.1}h-{:.1}z",
                start as f64 * cw,
                row as f64 * ch,
                (col - start) as f64 * cw,
                ch,
                (col - start) as f64 * cw
            );
        }
    }
    Some(d).filter(|d| !d.is_empty())
}

/// A round length of at most `km`: 1, 2 or 5 times a power of ten.
fn round_km(km: f64) -> f64 {
    let power = 10f64.powf(km.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * power)
        .find(|l| *l <= km)
        .unwrap_or(power)
}

/// The map, or `None` when there is nothing to draw: no plot's position and no country the
/// boundary data has. `label` is its text alternative.
pub(crate) fn draw(plots: &[MapPlot], label: &str) -> Option<Markup> {
    let shapes: Vec<(&MapPlot, Vec<Ring>)> = plots
        .iter()
        .map(|p| (p, outlines(&p.geometry)))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let mut countries: Vec<&str> = plots.iter().map(|p| p.country.as_str()).collect();
    countries.sort_unstable();
    countries.dedup();
    // Without a plot's position (geometry generalised to the country), the countries alone.
    let frame = if shapes.is_empty() {
        Frame::around(
            countries
                .iter()
                .filter_map(|c| country_bbox(c))
                .flat_map(|(w, s, e, n)| [(w, s), (e, n)]),
        )?
    } else {
        Frame::around(shapes.iter().flat_map(|(_, s)| s.iter().flatten().copied()))?
    };
    let shaded: Vec<(&str, String)> = countries
        .iter()
        .filter_map(|c| Some((*c, country_path(&frame, c)?)))
        .collect();
    let bar_km = round_km(WIDTH / 4.0 * frame.km_per_unit());
    let bar = bar_km / frame.km_per_unit();
    let bar_text = if bar_km >= 1.0 {
        format!("{bar_km} km")
    } else {
        format!("{} m", (bar_km * 1000.0).round())
    };
    let points = |ring: &[(f64, f64)]| {
        ring.iter()
            .map(|(lon, lat)| format!("{:.1},{:.1}", frame.x(*lon), frame.y(*lat)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // A plot smaller than a few units at this scale gets a marker at its middle, to be seen.
    let tiny = |ring: &[(f64, f64)]| {
        let xs = ring.iter().map(|p| frame.x(p.0));
        let ys = ring.iter().map(|p| frame.y(p.1));
        let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
        (x1 - x0 < 6.0 && y1 - y0 < 6.0).then_some(((x0 + x1) / 2.0, (y0 + y1) / 2.0))
    };
    Some(html! {
        svg.map xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (HEIGHT)}
            role="img" aria-labelledby="map-title" {
            title #map-title { (label) }
            rect.sea x="0" y="0" width=(WIDTH) height=(HEIGHT) {}
            @for (code, d) in &shaded {
                path.country d=(d) { title { (code) } }
            }
            @for (plot, rings) in &shapes {
                g.plot.issue[plot.issue] data-plot=(plot.id) {
                    title { (plot.id) " (" (plot.country) ")" }
                    @for ring in rings {
                        @if ring.len() < 3 {
                            circle cx=(format!("{:.1}", frame.x(ring[0].0)))
                                cy=(format!("{:.1}", frame.y(ring[0].1))) r="5" {}
                        } @else {
                            polygon points=(points(ring)) {}
                            @if let Some((x, y)) = tiny(ring) {
                                circle.marker cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="4" {}
                            }
                        }
                    }
                }
            }
            g.scale transform={"translate(16," (HEIGHT - 20.0) ")"} {
                path d=(format!("M0 0v6h{bar:.1}v-6")) {}
                text x="0" y="-4" { (bar_text) }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot(id: &str, geometry: &str) -> MapPlot {
        MapPlot {
            id: id.into(),
            country: "CI".into(),
            geometry: geometry.into(),
            issue: false,
        }
    }

    #[test]
    fn each_plot_is_one_shape_inside_the_drawing() {
        let plots = [
            plot(
                "P1",
                r#"{"type":"Polygon","coordinates":[[[-5.2,6.8],[-5.19,6.8],[-5.19,6.81],[-5.2,6.8]]]}"#,
            ),
            plot("P2", r#"{"type":"Point","coordinates":[-5.0,6.9]}"#),
            plot("P3", ""),
        ];
        let svg = draw(&plots, "Map of 3 plots")
            .expect("two plots have a location")
            .into_string();
        assert_eq!(svg.matches("<g class=\"plot\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("<polygon").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("<title id=\"map-title\">Map of 3 plots</title>"));
        // Côte d'Ivoire is shaded, and every coordinate drawn is inside the drawing.
        assert!(svg.contains("class=\"country\""));
        let numbers = svg
            .split("points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        for xy in numbers.split(' ') {
            let (x, y) = xy.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!(
                (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y),
                "{xy}"
            );
        }
    }

    #[test]
    fn without_positions_the_countries_are_drawn_and_without_those_nothing() {
        let svg = draw(&[plot("P", "")], "x")
            .expect("CI is drawn")
            .into_string();
        assert!(svg.contains("class=\"country\""));
        assert!(!svg.contains("class=\"plot"));
        let mut nowhere = plot("P", "");
        nowhere.country = "XX".into();
        assert!(draw(&[nowhere], "x").is_none());
    }

    #[test]
    fn the_scale_bar_is_a_round_length() {
        assert_eq!(round_km(37.0), 20.0);
        assert_eq!(round_km(7.3), 5.0);
        assert_eq!(round_km(0.15), 0.1);
        assert_eq!(round_km(1.0), 1.0);
    }
}
