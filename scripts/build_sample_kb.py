"""Generate the binary documents of the sample knowledge base.

The PDF and DOCX files in ``supportlah/sample_kb/`` are committed so the
runtime never needs fpdf2; this script is how they were made and how to
remake them after editing the text below. Run it from the repository root:

    .venv/bin/python scripts/build_sample_kb.py

The PDF uses fpdf2's core fonts, so every string here must be Latin-1.
"""
from __future__ import annotations

import argparse
import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from docx import Document
from docx.shared import Pt
from fpdf import FPDF
from fpdf.enums import XPos, YPos

SAMPLE_KB_DIR = Path(__file__).resolve().parent.parent / "supportlah" / "sample_kb"
# Fixed document dates keep regenerated files identical in metadata.
DOCUMENT_DATE = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
BUSINESS = "ChillPro Aircon & Home Services Pte. Ltd."

WARRANTY_TITLE = "Warranty, Refund and Cancellation Policy"
WARRANTY_SECTIONS: list[tuple[str, list[str]]] = [
    (
        "1. Workmanship warranty",
        [
            "Every job comes with a workmanship warranty that starts on the day of the visit. "
            "If the same problem comes back because of our work within the warranty period, "
            "we return and fix it free of charge, including transport fees.",
            "- 30-day warranty: aircon general service (GS), gas top-up (GAS), and all plumbing "
            "(PLB) and electrical (ELE) jobs.",
            "- 90-day warranty: chemical wash (CW), chemical overhaul (CO) and installation (INS).",
            "- Parts we supply and install, such as fan motors, capacitors and drain pumps, carry "
            "a 90-day parts warranty.",
            "- New aircon systems also carry the manufacturer's warranty (usually 1 year on parts "
            "and 5 years on the compressor, depending on the brand). We file the manufacturer "
            "claim for you.",
            "The warranty does not cover: wear and tear of old parts we did not replace, damage "
            "from power surges or water seepage, units opened or serviced by another contractor "
            "after our visit, corroded refrigerant piping that existed before our visit, or "
            "problems caused by a choked building drainage riser.",
        ],
    ),
    (
        "2. Refund policy",
        [
            "You pay only after the job is completed, so most jobs never need a refund. If our "
            "technician cannot fix the fault, you do not pay for the repair; only the $50 "
            "handyman inspection fee (HND-CALL) applies to plumbing and electrical visits.",
            "Annual service packages (PKG-HDB, PKG-CONDO, PKG-LANDED): full refund if you cancel "
            "within 14 days of purchase and before the first visit. After that, we refund the "
            "unused services at the single-visit general service price, minus a $20 "
            "administration fee.",
            "Approved refunds are paid within 7 working days to the original payment method. "
            "Cash payments are refunded by PayNow.",
        ],
    ),
    (
        "3. Cancellation and rescheduling",
        [
            "- 24 hours' notice or more: cancel or reschedule free of charge.",
            "- Less than 24 hours' notice: $20 cancellation or rescheduling fee.",
            "- Wasted trip: $40 if the technician arrives and cannot start work, for example "
            "nobody aged 18 or above is home, or the condo management refuses entry because "
            "the visit was not registered.",
            "If we need to reschedule, we tell you at least 2 hours before the slot. If we "
            "cancel on the day itself, you get $10 off your next visit.",
            "Please cancel or reschedule by WhatsApp (+65 6234 5679) or the hotline "
            "(+65 6234 5678) during office hours, Monday to Saturday, 9am to 6pm.",
        ],
    ),
    (
        "4. Complaint process",
        [
            "Step 1 - Contact us within 7 days of the visit by WhatsApp or email "
            "(hello@chillpro.example.sg) with your booking number (format CP-YYMMDD-NNN), "
            "a description of the problem and photos or a short video.",
            "Step 2 - We acknowledge within 1 working day, and a service supervisor calls you.",
            "Step 3 - If the problem is covered by the warranty, a technician revisits within "
            "3 working days.",
            "Step 4 - If you are not satisfied, ask for the Operations Manager. You will receive "
            "a written reply within 5 working days.",
            "Step 5 - If we still cannot agree, we will take part in mediation at the Consumers "
            "Association of Singapore (CASE).",
        ],
    ),
    (
        "5. Damage to property",
        [
            "ChillPro carries public liability insurance of up to $1,000,000. Please report any "
            "damage to your property within 48 hours of the visit, with photos.",
        ],
    ),
]

CORPORATE_TITLE = "Corporate Maintenance Contracts"
CORPORATE_INTRO = [
    "ChillPro maintains the air-conditioning of offices, retail shops, clinics, F&B outlets, "
    "tuition centres and small factories across Singapore. Corporate contracts start at "
    "10 fan coil units per site and run for 12 months.",
    "Every plan includes quarterly preventive maintenance visits (4 a year) scheduled in "
    "advance, a digital service report with photos after each visit, priority booking for "
    "repairs, and a named account manager.",
]
CORPORATE_PLANS_HEADER = [
    "Plan (code)",
    "Visits per year",
    "Chemical wash",
    "Response time (SLA)",
    "Price per unit per year",
]
CORPORATE_PLANS = [
    ["Basic (CORP-BASIC)", "4 quarterly general services", "Not included", "Within 2 working days", "$100"],
    ["Business (CORP-BIZ)", "4 quarterly general services", "1 per unit per year", "Within 1 working day", "$160"],
    [
        "Premium (CORP-PREM)",
        "4 quarterly general services + monthly filter cleaning",
        "1 per unit per year",
        "Within 4 hours in office hours; 24/7 emergency line",
        "$260",
    ],
]
CORPORATE_SECTIONS: list[tuple[str, list[str]]] = [
    (
        "Pricing notes",
        [
            "Corporate prices are per fan coil unit per year and exclude GST; 9% GST is added on "
            "the invoice.",
            "Ceiling cassette and ducted units add $20 per unit per year.",
            "Visits after 6pm, on Sundays or on public holidays (for shops and restaurants that "
            "cannot close) add 15% to the visit.",
            "Repairs and spare parts are quoted separately at 10% below our household rates.",
        ],
    ),
    (
        "Service level agreement (SLA)",
        [
            "The response time counts from when a fault is logged with the corporate hotline "
            "or corporate@chillpro.example.sg until a technician is on site.",
            "If we miss the response time, you receive a credit of 10% of that quarter's fee, "
            "up to 2 credits per quarter.",
            "Premium customers can call the 24/7 emergency line for breakdowns outside office "
            "hours; the call-out itself is free, parts are charged.",
        ],
    ),
    (
        "Contract terms",
        [
            "12-month term that renews automatically; either side may end it with 60 days' "
            "written notice.",
            "Invoiced quarterly in advance. Payment by bank transfer or GIRO within 30 days "
            "of the invoice.",
            "A free site survey and a written quotation are provided before signing.",
            "Jurong Island sites need 3 working days' notice for security passes and carry a "
            "$50 surcharge per visit.",
        ],
    ),
    (
        "How to start",
        [
            "Email corporate@chillpro.example.sg or call +65 6234 5678 with your company name, "
            "site address, the number and type of units, and your preferred visit times.",
        ],
    ),
]


class _PolicyPdf(FPDF):
    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.cell(0, 10, f"{BUSINESS} - page {self.page_no()}", align="C")


def build_warranty_pdf(path: Path) -> None:
    pdf = _PolicyPdf(format="A4")
    pdf.set_creation_date(DOCUMENT_DATE)
    pdf.set_title(WARRANTY_TITLE)
    pdf.set_author(BUSINESS)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.multi_cell(0, 9, f"{BUSINESS}\n{WARRANTY_TITLE}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(
        0,
        6,
        "Effective 1 March 2025. All amounts in SGD and inclusive of 9% GST.",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(3)
    for heading, paragraphs in WARRANTY_SECTIONS:
        pdf.set_font("Helvetica", style="B", size=12)
        pdf.multi_cell(0, 8, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", size=10)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 5.5, paragraph, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(1.5)
        pdf.ln(2)
    pdf.output(str(path))


def build_corporate_docx(path: Path) -> None:
    document = Document()
    properties = document.core_properties
    properties.title = CORPORATE_TITLE
    properties.author = BUSINESS
    properties.created = DOCUMENT_DATE.replace(tzinfo=None)
    properties.modified = DOCUMENT_DATE.replace(tzinfo=None)
    properties.last_modified_by = BUSINESS
    properties.revision = 1

    document.add_heading(f"{CORPORATE_TITLE} - {BUSINESS}", level=1)
    for paragraph in CORPORATE_INTRO:
        document.add_paragraph(paragraph)

    document.add_heading("Plans and prices", level=2)
    table = document.add_table(rows=1, cols=len(CORPORATE_PLANS_HEADER))
    table.style = "Table Grid"
    for cell, title in zip(table.rows[0].cells, CORPORATE_PLANS_HEADER):
        cell.text = title
        for run in cell.paragraphs[0].runs:
            run.bold = True
            run.font.size = Pt(10)
    for plan in CORPORATE_PLANS:
        for cell, value in zip(table.add_row().cells, plan):
            cell.text = value

    for heading, paragraphs in CORPORATE_SECTIONS:
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph, style="List Bullet")
    _save_with_fixed_timestamps(document, path)


def _save_with_fixed_timestamps(document: Document, path: Path) -> None:
    """python-docx stamps zip entries with the current time; pin them so reruns are byte-identical."""
    buffer = io.BytesIO()
    document.save(buffer)
    stamp = DOCUMENT_DATE.timetuple()[:6]
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            pinned = zipfile.ZipInfo(entry.filename, date_time=stamp)
            pinned.compress_type = zipfile.ZIP_DEFLATED
            pinned.external_attr = entry.external_attr
            target.writestr(pinned, source.read(entry.filename))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_KB_DIR, help="directory to write into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    build_warranty_pdf(args.out / "warranty-and-refunds.pdf")
    build_corporate_docx(args.out / "corporate-contracts.docx")
    print(f"wrote warranty-and-refunds.pdf and corporate-contracts.docx to {args.out}")


if __name__ == "__main__":
    main()
