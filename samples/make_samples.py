"""Write samples/promo_codes.csv and samples/promo_codes.xlsx from the one table below.

Run ``python samples/make_samples.py`` after editing the table; both files stay identical in
content. The xlsx is written the way Excel users type it: real date cells for the dates, codes
in text-formatted cells, the quantity as a number.

The table is a realistic marketing sheet: all four entitlement kinds, rows without a code
(generated), one quantity row, one row whose id is all zeros (the sandbox answers 422 "not
found", so a demo run shows a ``rejected`` row) and six deliberately bad rows.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

HEADER = [
    "Promo Code",
    "Expires",
    "Video ID",
    "Playlist ID",
    "Subscription Plan ID",
    "Pass Plan ID",
    "Qty",
    "Campaign",
    "Notes",
]

V1, V2, V3 = "5f1a2b3c4d5e6f7a8b9c0d11", "5f1a2b3c4d5e6f7a8b9c0d12", "5F1A2B3C4D5E6F7A8B9C0D13"
P1, P2 = "60aa11bb22cc33dd44ee5501", "60aa11bb22cc33dd44ee5502"
S1, S2 = "61b0c0d0e0f0a0b0c0d0e001", "61b0c0d0e0f0a0b0c0d0e002"
X1, X2 = "62c1d2e3f4a5b6c7d8e9f001", "62c1d2e3f4a5b6c7d8e9f002"
ZERO = "000000000000000000000000"


def row(
    code: str,
    expires: str,
    *,
    video: str = "",
    playlist: str = "",
    plan: str = "",
    pass_plan: str = "",
    qty: str = "",
    campaign: str = "",
    notes: str = "",
) -> list[str]:
    return [code, expires, video, playlist, plan, pass_plan, qty, campaign, notes]


ROWS: list[list[str]] = [
    row("SUMMER-2030-001", "2030-08-31", video=V1, campaign="Summer launch"),
    row("SUMMER-2030-002", "2030-08-31", video=V1, campaign="Summer launch"),
    row("SUMMER-2030-003", "2030-08-31", video=V2, campaign="Summer launch"),
    row("SUMMER-2030-004", "2030-08-31", video=V3, campaign="Summer launch", notes="upper-case id"),
    row("DOCS_FEST_01", "2030-10-15", playlist=P1, campaign="Documentary festival"),
    row("DOCS_FEST_02", "2030-10-15", playlist=P1, campaign="Documentary festival"),
    row("DOCS_FEST_03", "2030-10-15", playlist=P2, campaign="Documentary festival"),
    row("00123", "2031-01-31", plan=S1, campaign="Partner bundle", notes="leading zeros"),
    row("00124", "2031-01-31", plan=S1, campaign="Partner bundle"),
    row("NA", "2031-01-31", plan=S2, campaign="Partner bundle", notes="a code, not missing"),
    row("NULL", "2031-01-31", plan=S2, campaign="Partner bundle", notes="a code, not missing"),
    row("PASS-WEEKEND-A", "2030-12-31", pass_plan=X1, campaign="Weekend pass"),
    row("PASS-WEEKEND-B", "2030-12-31", pass_plan=X1, campaign="Weekend pass"),
    row("PASS-WEEKEND-C", "12/31/2030", pass_plan=X2, campaign="Weekend pass", notes="US date"),
    row("VIP2030GOLD", "2032-06-30", plan=S1, campaign="VIP"),
    row("VIP2030SILVER", "2032-06-30", plan=S2, campaign="VIP"),
    row("", ""),  # a blank line, as marketers leave them
    row("GIFT-ALPHA", "2030-11-30", video=V2, campaign="Holiday gifts"),
    row("GIFT-BRAVO", "2030-11-30", video=V2, campaign="Holiday gifts"),
    row("GIFT-CHARLIE", "2030-11-30", playlist=P2, campaign="Holiday gifts"),
    row("GIFT-DELTA", "11/30/2030", pass_plan=X2, campaign="Holiday gifts", notes="US date"),
    row("SCHOOL-2031-1", "2031-09-01", playlist=P1, campaign="Back to school"),
    row("SCHOOL-2031-2", "2031-09-01", playlist=P1, campaign="Back to school"),
    row("", "2030-12-31", video=V1, campaign="Influencers", notes="code generated"),
    row("", "2030-12-31", video=V1, campaign="Influencers", notes="code generated"),
    row("", "2031-03-31", playlist=P2, campaign="Influencers", notes="code generated"),
    row("", "2031-03-31", plan=S1, campaign="Influencers", notes="code generated"),
    row("", "2031-06-30", pass_plan=X1, qty="5", campaign="Street team", notes="five codes"),
    row("PRESS-KIT-01", "2030-09-30", video=V3, campaign="Press"),
    row("PRESS-KIT-02", "2030-09-30", playlist=P2, campaign="Press"),
    row("GHOST-ENTRY", "2030-12-31", video=ZERO, campaign="Press", notes="unknown video id"),
    row("LAUNCH-2030", "2030-12-31", plan=S2, campaign="Launch"),
    row("LAUNCH-2031", "2031-12-31", plan=S2, campaign="Launch"),
    # The deliberately bad rows.
    row("OLD-PROMO-2020", "2020-01-01", video=V1, campaign="Archive", notes="expired"),
    row("BOTH-KINDS", "2030-12-31", video=V1, playlist=P1, campaign="Mixed", notes="two"),
    row("SHORT-ID", "2030-12-31", video="12345", campaign="Mixed", notes="bad id"),
    row("summer-2030-001", "2030-08-31", video=V1, campaign="Summer launch", notes="duplicate"),
    row("SPRING 2030!", "2030-04-30", playlist=P1, campaign="Spring", notes="bad characters"),
    row("BAD-DATE-1", "31/31/2030", plan=S1, campaign="Mixed", notes="not a date"),
]


def _date_cell(text: str) -> dt.date | str:
    """ISO and month-first slash dates become real date cells; anything else stays text."""
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return text


def write_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")  # as Excel writes it
        writer.writerow(HEADER)
        writer.writerows(ROWS)


def write_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Promo codes"
    sheet.append(HEADER)
    for number, values in enumerate(ROWS, start=2):
        for column, text in enumerate(values, start=1):
            if not text:
                continue
            cell = sheet.cell(row=number, column=column)
            if column == 2:
                cell.value = _date_cell(text)
                if isinstance(cell.value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
            elif column == 7:
                cell.value = int(text)
            else:
                cell.value = text
                cell.number_format = "@"  # text cells: 00123 keeps its zeros
    book.save(path)


def main() -> None:
    here = Path(__file__).resolve().parent
    write_csv(here / "promo_codes.csv")
    write_xlsx(here / "promo_codes.xlsx")


if __name__ == "__main__":
    main()
