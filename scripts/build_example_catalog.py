"""Rebuild the example catalogue and queries bundled in gentool_router/data/.

Sources: Seal-Tools (Apache-2.0, see gentool_router/data/NOTICE) for ~280 tools from varied domains, plus
hand-written tool families in which a stronger version sits next to a weaker one (weak-to-strong cases).
Deterministic: the same input files give the same output.

    python scripts/build_example_catalog.py --seal-tools ../shared/data/seal-tools
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gentool_router" / "data"
NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
N_QUERY_TOOLS = 40
N_TOTAL_SEAL = 280


def obj(props: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": props, "required": required}


def s(desc: str, typ: str = "string") -> dict:
    return {"type": typ, "description": desc}


FAMILIES = [
    {"name": "get_weather", "description": "Get the current temperature in a city.",
     "parameters": obj({"city": s("City name")}, ["city"]), "returns": {"temperature": s("Degrees Celsius", "number")},
     "family": "weather", "version": "1", "deprecated": True},
    {"name": "get_weather_forecast", "description": "Get current conditions and an hourly and daily forecast for up to 14 days for any location: temperature, rain probability, wind and UV index.",
     "parameters": obj({"location": s("City, address or coordinates"), "days": s("Days ahead, 1-14", "integer"), "units": s("metric or imperial")}, ["location"]),
     "returns": {"current": s("Current conditions", "object"), "daily": s("Daily forecast", "array"), "hourly": s("Hourly forecast", "array")},
     "family": "weather", "version": "2", "supersedes": "get_weather"},
    {"name": "send_mail", "description": "Send a short plain-text message to one email address.",
     "parameters": obj({"to": s("Recipient address"), "body": s("Message text")}, ["to", "body"])},
    {"name": "send_email", "description": "Send an email with a subject, body, CC recipients and file attachments; returns the delivery status.",
     "parameters": obj({"to": s("Recipient addresses"), "subject": s("Subject line"), "body": s("Message text"), "cc": s("CC addresses"), "attachments": s("Paths of files to attach", "array")}, ["to", "subject", "body"]),
     "returns": {"message_id": s("Id of the sent message"), "status": s("Delivery status")}},
    {"name": "find_flights", "description": "List flights between two airports.",
     "parameters": obj({"origin": s("Origin airport"), "destination": s("Destination airport")}, ["origin", "destination"]),
     "family": "flights", "version": "1"},
    {"name": "search_flights", "description": "Search flights between two cities on a date for a number of passengers and a cabin class, with prices, stops and durations.",
     "parameters": obj({"origin": s("Origin city or airport"), "destination": s("Destination city or airport"), "date": s("Departure date"), "passengers": s("Number of passengers", "integer"), "cabin_class": s("economy, premium, business or first")}, ["origin", "destination", "date"]),
     "returns": {"flights": s("Matching flights with price, stops and duration", "array")},
     "family": "flights", "version": "2", "supersedes": "find_flights"},
    {"name": "translate_text", "description": "Translate text into English.",
     "parameters": obj({"text": s("Text to translate")}, ["text"])},
    {"name": "translate_text_v2", "description": "Translate text between any two of 130 languages; detects the source language when it is not given.",
     "parameters": obj({"text": s("Text to translate"), "target_language": s("Language to translate into"), "source_language": s("Language of the text")}, ["text", "target_language"]),
     "returns": {"translation": s("Translated text"), "detected_language": s("Detected source language")}},
    {"name": "convert_currency", "description": "Convert an amount of money between currencies at today's rate.",
     "parameters": obj({"amount": s("Amount", "number"), "from_currency": s("Currency code to convert from"), "to_currency": s("Currency code to convert to")}, ["amount", "from_currency", "to_currency"]),
     "family": "currency", "version": "1"},
    {"name": "convert_currency_historical", "description": "Convert an amount of money between 170 currencies at the live rate or at the historical rate of any past date since 1999.",
     "parameters": obj({"amount": s("Amount", "number"), "from_currency": s("Currency code to convert from"), "to_currency": s("Currency code to convert to"), "date": s("Date of the rate (YYYY-MM-DD); today if omitted")}, ["amount", "from_currency", "to_currency"]),
     "returns": {"converted_amount": s("Converted amount", "number"), "rate": s("Exchange rate used", "number"), "rate_date": s("Date of the rate")},
     "family": "currency", "version": "2", "supersedes": "convert_currency"},
    {"name": "summarize_text", "description": "Shorten a text.",
     "parameters": obj({"text": s("Text to shorten")}, ["text"])},
    {"name": "summarize_document", "description": "Summarize a long document or report into key points, with a chosen length and style such as bullet points or an abstract.",
     "parameters": obj({"text": s("Document text"), "max_points": s("Number of key points", "integer"), "style": s("bullets, abstract or headline")}, ["text"]),
     "returns": {"summary": s("The summary")}},
    {"name": "geocode", "description": "Get coordinates for a place name.",
     "parameters": obj({"place": s("Place name")}, ["place"]), "family": "geocoding", "version": "1", "deprecated": True},
    {"name": "geocode_address", "description": "Turn a street address into latitude and longitude with the formatted address, postal code and a confidence score.",
     "parameters": obj({"address": s("Street address"), "country": s("Country to search in")}, ["address"]),
     "returns": {"latitude": s("Latitude", "number"), "longitude": s("Longitude", "number"), "formatted_address": s("Normalised address"), "confidence": s("0-1", "number")},
     "family": "geocoding", "version": "2", "supersedes": "geocode"},
]

FAMILY_QUERIES = [
    ("Will it rain in Lisbon over the next three days?", "get_weather_forecast"),
    ("Email anna@example.com with the subject 'Invoice' and attach invoice.pdf", "send_email"),
    ("Find business class flights from Paris to Tokyo on 12 May for two passengers", "search_flights"),
    ("Translate 'Guten Morgen, wie geht es dir?' from German into Japanese", "translate_text_v2"),
    ("How many US dollars were 500 euros worth on 1 March 2020?", "convert_currency_historical"),
    ("What are the coordinates and postal code of 10 Downing Street, London?", "geocode_address"),
]
NO_TOOL_QUERIES = [
    "Write a haiku about autumn leaves",
    "Thanks, that's all for today!",
    "Tell me a joke about penguins",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seal-tools", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/seal-tools")
    args = parser.parse_args()
    tools = {}
    for line in (args.seal_tools / "tool.jsonl").open():
        t = json.loads(line)
        if NAME.match(t["api_name"]):
            tools[t["api_name"]] = t
    dev = [json.loads(line) for line in (args.seal_tools / "dev.jsonl").open()]
    queries, chosen = [], []
    seen_domains = set()
    for record in dev:
        if "easy" not in record["id"] or len(record["calling"]) != 1:
            continue
        api = record["calling"][0]["api"]
        domain = tools.get(api, {}).get("field", "").split("/")[0]
        if api in tools and domain not in seen_domains and len(chosen) < N_QUERY_TOOLS:
            seen_domains.add(domain)
            chosen.append(api)
            queries.append((record["query"], api))
    by_domain = defaultdict(list)
    for name in sorted(tools):
        if name not in chosen:
            by_domain[tools[name]["field"].split("/")[0]].append(name)
    domains = sorted(by_domain)
    position = 0
    while len(chosen) < N_TOTAL_SEAL:
        domain = domains[position % len(domains)]
        if by_domain[domain]:
            chosen.append(by_domain[domain].pop(0))
        position += 1
    catalogue = [
        {"name": n, "description": tools[n]["api_description"],
         "parameters": obj(tools[n]["parameters"], tools[n].get("required", [])),
         **({"returns": tools[n]["responses"]} if tools[n].get("responses") else {})}
        for n in sorted(chosen)
    ] + FAMILIES
    with (OUT / "example_tools.jsonl").open("w") as handle:
        for tool in catalogue:
            handle.write(json.dumps(tool, ensure_ascii=False) + "\n")
    picked = queries[:12] + FAMILY_QUERIES
    with (OUT / "example_queries.jsonl").open("w") as handle:
        for query, expected in picked:
            handle.write(json.dumps({"query": query, "expected": expected}, ensure_ascii=False) + "\n")
        for query in NO_TOOL_QUERIES:
            handle.write(json.dumps({"query": query, "expected": None}) + "\n")
    print(f"{len(catalogue)} tools, {len(picked) + len(NO_TOOL_QUERIES)} queries written to {OUT}")


if __name__ == "__main__":
    main()
