"""Each loader on a real file written by the test."""
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from rag.loaders import Block, DocumentLoadError, UnsupportedDocument, load_document, load_document_bytes


def texts(blocks: list[Block], kind: str | None = None) -> list[str]:
    return [b.text for b in blocks if kind is None or b.kind == kind]


def test_markdown_headings_paragraphs_lists_tables_and_code(tmp_path: Path):
    path = tmp_path / "faq.md"
    path.write_text(
        "---\ntitle: ignored front matter\n---\n"
        "# ChillPro FAQ\nWe service **all brands**\nin Singapore.\n\n"
        "## How much is a chemical wash?\nIt costs $80. See [prices](https://chillpro.sg/prices).\n\n"
        "- one unit\n- two units\n  or more\n\n"
        "| Model | BTU | Price |\n|---|---:|---|\n| GS-HDB-2 | 9000 | $1,200 |\n| AC2024 | 12000 | |\n\n"
        "Warranty\n--------\n90 days on parts.\n\n"
        "```\n# not a heading\n```\n",
        encoding="utf-8",
    )
    blocks = load_document(path)
    assert texts(blocks, "heading") == ["ChillPro FAQ", "How much is a chemical wash?", "Warranty"]
    assert texts(blocks, "paragraph") == [
        "We service all brands in Singapore.",
        "It costs $80. See prices (https://chillpro.sg/prices).",
        "- one unit",
        "- two units or more",
        "90 days on parts.",
        "# not a heading",
    ]
    assert texts(blocks, "table_row") == ["Model: GS-HDB-2; BTU: 9000; Price: $1,200", "Model: AC2024; BTU: 12000"]
    row = next(b for b in blocks if b.kind == "table_row")
    assert row.heading_path == ("ChillPro FAQ", "How much is a chemical wash?")
    assert blocks[-1].heading_path == ("ChillPro FAQ", "Warranty")


def test_plain_text_paragraphs_and_encodings(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_bytes("Opening hours\nMon-Fri 9am-6pm\n\n\nCafé closed on PH.".encode("cp1252"))
    blocks = load_document(path)
    assert texts(blocks) == ["Opening hours\nMon-Fri 9am-6pm", "Café closed on PH."]
    assert {b.kind for b in blocks} == {"paragraph"}
    utf16 = load_document_bytes("a.txt", "冷气机 service".encode("utf-16"))
    assert texts(utf16) == ["冷气机 service"]


def test_html_drops_boilerplate_and_keeps_content(tmp_path: Path):
    path = tmp_path / "page.html"
    path.write_text(
        """<html><head><title>t</title><style>p{}</style></head><body class="nav-open">
        <header class="site-header"><a href="/">Home</a></header>
        <nav><a href="/about">About us</a></nav>
        <div id="cookie-consent">We use cookies <button>OK</button></div>
        <div class="sidebar-widget">Latest posts</div>
        <div role="navigation">Skip links</div>
        <main><article><header><h1>Aircon Servicing</h1></header>
          <p>We service all brands.<br>Call 6123 4567.</p>
          Loose text inside the article.
          <h2>Prices</h2>
          <table><caption>Price list</caption>
            <thead><tr><th>Service</th><th>Price</th></tr></thead>
            <tbody><tr><td>General service</td><td>$30</td></tr>
                   <tr><td colspan="2">Call for chemical overhaul</td></tr></tbody></table>
          <ul><li>Same-day slots</li><li>Weekend slots <ul><li>Saturday only</li></ul></li></ul>
          <div class="share-buttons">Share on Facebook</div>
          <!-- hidden comment -->
          <p hidden>Secret</p>
        </article></main>
        <aside>Related</aside><footer>© 2024</footer><script>var x = 1;</script>
        </body></html>""",
        encoding="utf-8",
    )
    blocks = load_document(path)
    assert texts(blocks, "heading") == ["Aircon Servicing", "Prices"]
    assert texts(blocks, "paragraph") == [
        "We service all brands. Call 6123 4567.",
        "Loose text inside the article.",
        "Same-day slots",
        "Weekend slots",
        "Saturday only",
    ]
    assert texts(blocks, "table_row") == [
        "Service: General service; Price: $30",
        "Service: Call for chemical overhaul; Price: Call for chemical overhaul",
    ]
    row = next(b for b in blocks if b.kind == "table_row")
    assert row.heading_path == ("Aircon Servicing", "Prices", "Price list")
    joined = " ".join(texts(blocks))
    for boilerplate in ("Home", "About us", "cookies", "Latest posts", "Skip links", "Facebook", "Related", "2024", "var x", "Secret", "comment"):
        assert boilerplate not in joined


def test_pdf_pages_paragraphs_and_font_size_headings(tmp_path: Path):
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, "Servicing Guide", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, "We recommend servicing every three months to keep the coils clean. " * 4)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, "Chemical Wash", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, "A chemical wash costs $80 per unit and takes about an hour.")
    pdf.add_page()
    pdf.multi_cell(0, 6, "Warranty is 90 days on all parts.")
    path = tmp_path / "guide.pdf"
    pdf.output(str(path))

    blocks = load_document(path)
    assert texts(blocks, "heading") == ["Servicing Guide", "Chemical Wash"]
    paragraphs = [b for b in blocks if b.kind == "paragraph"]
    assert paragraphs[0].text.startswith("We recommend servicing every three months")
    assert paragraphs[0].text.count("We recommend") == 4  # wrapped lines re-joined into one paragraph
    assert paragraphs[0].heading_path == ("Servicing Guide",) and paragraphs[0].page == 1
    assert paragraphs[1].text == "A chemical wash costs $80 per unit and takes about an hour."
    assert paragraphs[1].heading_path == ("Servicing Guide", "Chemical Wash")
    assert (paragraphs[2].text, paragraphs[2].page) == ("Warranty is 90 days on all parts.", 2)


def test_docx_heading_styles_paragraphs_and_table_records(tmp_path: Path):
    document = docx.Document()
    document.add_heading("Service Packages", level=1)
    document.add_paragraph("All packages include a 90-day warranty.")
    document.add_heading("HDB", level=2)
    table = document.add_table(rows=3, cols=3)
    for row, values in zip(table.rows, [("Package", "Units", "Price"), ("GS-HDB-2", "2", "$50"), ("GS-HDB-3", "3", "")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    document.add_paragraph("Prices include GST.")
    path = tmp_path / "packages.docx"
    document.save(str(path))

    blocks = load_document(path)
    assert [(b.kind, b.text) for b in blocks] == [
        ("heading", "Service Packages"),
        ("paragraph", "All packages include a 90-day warranty."),
        ("heading", "HDB"),
        ("table_row", "Package: GS-HDB-2; Units: 2; Price: $50"),
        ("table_row", "Package: GS-HDB-3; Units: 3"),
        ("paragraph", "Prices include GST."),
    ]
    assert blocks[3].heading_path == ("Service Packages", "HDB")


def test_csv_rows_become_records_with_sniffed_delimiter_and_bom(tmp_path: Path):
    path = tmp_path / "prices.csv"
    path.write_bytes("Service;Price;Notes\nGeneral service;$30;\n\nChemical wash;$80;per unit;extra\n".encode("utf-8-sig"))
    blocks = load_document(path)
    assert texts(blocks) == [
        "Service: General service; Price: $30",
        "Service: Chemical wash; Price: $80; Notes: per unit; Column 4: extra",
    ]
    assert {b.kind for b in blocks} == {"table_row"}


def test_unsupported_and_broken_files_name_the_file(tmp_path: Path):
    with pytest.raises(UnsupportedDocument) as unsupported:
        load_document_bytes("prices.xlsx", b"PK\x03\x04")
    assert unsupported.value.file_name == "prices.xlsx"
    assert isinstance(unsupported.value, DocumentLoadError)

    with pytest.raises(DocumentLoadError, match="broken.pdf"):
        load_document_bytes("broken.pdf", b"%PDF-1.4 this is not really a pdf")
    with pytest.raises(DocumentLoadError, match="broken.docx"):
        load_document_bytes("broken.docx", b"not a zip file")
    with pytest.raises(DocumentLoadError, match="missing.md") as missing:
        load_document(tmp_path / "missing.md")
    assert "cannot read" in missing.value.reason
