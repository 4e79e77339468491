"""Writes the binary documents (PDF and DOCX) of the evaluation KBs from plain content blocks.

Each set's build_binary_docs.py holds only its text, as a list of blocks, and calls these two
writers, so every set's documents are laid out the same way and can be rebuilt.
A block is one of:
    ("h", "Heading")                      a section heading
    ("p", "A paragraph.")                 body text
    ("bullets", ["one", "two"])           a bulleted list
    ("table", [header_row, row, ...])     a table; in the PDF its header row repeats on every page
                                          it continues on
    ("widths", (70, 40, 64))              PDF column widths (mm) for the next table only

fpdf2's built-in fonts are Latin-1 only, so PDF text must be Latin-1 (keep the PDFs English).
Needs fpdf2 and python-docx.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from fpdf import FPDF
from fpdf.fonts import FontFace

Block = tuple


def write_pdf(path: Path, title: str, subtitle: str, author: str, blocks: Iterable[Block]) -> None:
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "I", 10)
    pdf.cell(0, 6, subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    widths = None
    for kind, content in blocks:
        if kind == "h":
            pdf.ln(3)
            pdf.set_font("Helvetica", "B", 12.5)
            pdf.cell(0, 8, content, new_x="LMARGIN", new_y="NEXT")
        elif kind == "p":
            pdf.set_font("Helvetica", "", 10.5)
            pdf.multi_cell(0, 5.5, content, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
        elif kind == "bullets":
            pdf.set_font("Helvetica", "", 10.5)
            for item in content:
                pdf.multi_cell(0, 5.5, "-  " + item, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
        elif kind == "widths":
            widths = content
        elif kind == "table":
            pdf.set_font("Helvetica", "", 9.5)
            with pdf.table(col_widths=widths, text_align="LEFT", repeat_headings=1, line_height=5.5,
                           headings_style=FontFace(emphasis="BOLD", fill_color=(232, 240, 226))) as table:
                for row in content:
                    cells = table.row()
                    for cell in row:
                        cells.cell(cell)
            pdf.ln(2)
            widths = None
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    pdf.output(str(path))


def write_docx(path: Path, title: str, subtitle: str, author: str, blocks: Iterable[Block]) -> None:
    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.author = author
    doc.styles["Normal"].font.name = "Calibri"
    doc.styles["Normal"].font.size = Pt(11)
    doc.add_heading(title, level=0).alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph(subtitle).alignment = WD_ALIGN_PARAGRAPH.CENTER
    for kind, content in blocks:
        if kind == "h":
            doc.add_heading(content, level=1)
        elif kind == "p":
            doc.add_paragraph(content)
        elif kind == "bullets":
            for item in content:
                doc.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            table = doc.add_table(rows=len(content), cols=len(content[0]))
            table.style = "Light Grid Accent 1"
            for i, row in enumerate(content):
                for j, value in enumerate(row):
                    cell = table.cell(i, j)
                    cell.text = value
                    if i == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
            doc.add_paragraph("")
        elif kind == "widths":
            continue  # PDF only
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    doc.save(str(path))
