#!/usr/bin/env python3
"""An independent RFC 7946 GeoJSON checker for lotline's EUDR export, standard
library only.

Usage: geojson_check.py FILE [--expect-plots P1,P2,...]

Checks that FILE is a GeoJSON FeatureCollection as RFC 7946 defines it: every
member has the type it must, every Feature has a "geometry" (a geometry object or
null) and "properties" (an object or null), every position is [longitude,
latitude] with longitude in [-180, 180] and latitude in [-90, 90], every linear
ring is closed with at least four positions, and (for the EU's file description)
every feature's properties name ProducerCountry (ISO 3166-1 alpha-2) and
ProductionPlace, with Area (a number, hectares) on Point features that give one.
With --expect-plots, the set of ProductionPlace values must equal the list given.

Prints "ok: N features" or one line per problem, and exits 1 on any problem.
"""
import json
import sys

GEOMETRIES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
              "GeometryCollection"}


def check_position(p, where, problems):
    if not isinstance(p, list) or len(p) < 2 or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in p):
        problems.append(f"{where}: a position must be an array of at least two numbers, got {p!r}")
        return
    lon, lat = p[0], p[1]
    if not -180 <= lon <= 180:
        problems.append(f"{where}: longitude {lon} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        problems.append(f"{where}: latitude {lat} is outside [-90, 90]")


def check_ring(ring, where, problems):
    if not isinstance(ring, list) or len(ring) < 4:
        problems.append(f"{where}: a linear ring needs at least four positions")
        return
    for i, p in enumerate(ring):
        check_position(p, f"{where} position {i}", problems)
    if ring[0] != ring[-1]:
        problems.append(f"{where}: a linear ring must be closed (first and last positions equal)")


def check_geometry(g, where, problems):
    if g is None:
        return
    if not isinstance(g, dict) or g.get("type") not in GEOMETRIES:
        problems.append(f"{where}: not a geometry object: {g!r:.80}")
        return
    t = g["type"]
    if t == "GeometryCollection":
        for i, member in enumerate(g.get("geometries", [])):
            check_geometry(member, f"{where} geometry {i}", problems)
        return
    c = g.get("coordinates")
    if t == "Point":
        check_position(c, where, problems)
    elif t in ("MultiPoint", "LineString"):
        for i, p in enumerate(c or []):
            check_position(p, f"{where} position {i}", problems)
    elif t == "MultiLineString":
        for i, line in enumerate(c or []):
            for j, p in enumerate(line):
                check_position(p, f"{where} line {i} position {j}", problems)
    elif t == "Polygon":
        if not c:
            problems.append(f"{where}: a Polygon needs at least one ring")
        for i, ring in enumerate(c or []):
            check_ring(ring, f"{where} ring {i}", problems)
    elif t == "MultiPolygon":
        for i, poly in enumerate(c or []):
            for j, ring in enumerate(poly):
                check_ring(ring, f"{where} polygon {i} ring {j}", problems)


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    expect = None
    if "--expect-plots" in args:
        k = args.index("--expect-plots")
        expect = set(filter(None, args[k + 1].split(",")))
        del args[k:k + 2]
    with open(args[0], encoding="utf-8") as f:
        doc = json.load(f)
    problems = []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        problems.append("the document is not a FeatureCollection")
        doc = {"features": []}
    features = doc.get("features")
    if not isinstance(features, list):
        problems.append('"features" must be an array')
        features = []
    places = set()
    for n, feature in enumerate(features):
        where = f"feature {n}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(f"{where}: not a Feature")
            continue
        if "geometry" not in feature:
            problems.append(f'{where}: a Feature must have a "geometry" member (null if unlocated)')
        check_geometry(feature.get("geometry"), where, problems)
        props = feature.get("properties")
        if "properties" not in feature or not (props is None or isinstance(props, dict)):
            problems.append(f'{where}: "properties" must be an object or null')
            continue
        props = props or {}
        country = props.get("ProducerCountry")
        if not (isinstance(country, str) and len(country) == 2 and country.isupper()):
            problems.append(f"{where}: ProducerCountry must be an ISO 3166-1 alpha-2 code, got {country!r}")
        place = props.get("ProductionPlace")
        if not isinstance(place, str) or not place:
            problems.append(f"{where}: ProductionPlace is missing")
        else:
            places.add(place)
        geometry = feature.get("geometry") or {}
        if geometry.get("type") == "Point" and "Area" in props and not (
                isinstance(props["Area"], (int, float)) and props["Area"] > 0):
            problems.append(f"{where}: Area must be a positive number of hectares")
    if expect is not None and places != expect:
        problems.append(f"plots {sorted(places)} differ from the expected {sorted(expect)}")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"ok: {len(features)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
