"""Rebuilds the two binary documents of the bakery evaluation KB.

Writes kb/order-terms-and-refunds.pdf and kb/corporate-and-bulk-orders.docx with the shared
writers in ../kbdocs.py; the text lives here so they can be rebuilt. The PDF's cancellation
table is long on purpose: it starts on page 1 and continues on page 2 with its header row
repeated. fpdf2's built-in fonts are Latin-1 only, so the PDF text is English.

Usage: python build_binary_docs.py   (needs fpdf2 and python-docx)
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from kbdocs import write_docx, write_pdf  # noqa: E402  (shared writer next to this set)

KB = HERE / "kb"
COMPANY = "Pandan Oven Bakehouse Pte Ltd"

# ----------------------------------------------------------------------------- PDF
PDF_TITLE = "Order Terms & Refund Policy"
PDF_INTRO = (
    "These terms apply to every cake and bake ordered from Pandan Oven Bakehouse Pte Ltd (UEN 201945678K) "
    "for collection or delivery, whether ordered on our website, by WhatsApp or in our shops. Corporate and bulk "
    "orders have their own terms in our Corporate & Bulk Orders guide. Retail prices include 9% GST. "
    "In these terms, 'the date' means the collection or delivery date and time stated on your order."
)
PDF_SECTIONS_BEFORE_TABLE = [
    ("1. When your order is confirmed", [
        "An order is confirmed when we receive payment in full, or the 50% deposit for orders of S$300 and above. "
        "Unpaid orders are released after 2 hours and the slot is given to other customers.",
        "We start baking 1 day before the date and decorate on the day before or on the morning of the date. "
        "Custom decorations with fondant figurines start 3 days before the date.",
        "Please check the order confirmation we send you: the flavour, size, message, date, outlet or delivery "
        "address and slot. Tell us about any mistake within 12 hours of receiving it. We bake exactly what the "
        "confirmation says.",
    ]),
    ("2. Prices", [
        "Retail prices are those on our website and in our Cakes & Prices menu on the day you order, and include "
        "9% GST. A price change after you have paid does not affect your order. Pandan Perks member prices apply to "
        "daily bakes only. Offers cannot be combined unless we say so, and store credit cannot be used for delivery "
        "fees.",
        "Seasonal items (Durian Mao Shan Wang from 1 June to 31 August, and our Christmas menu in December) are "
        "sold while stocks last. If we cannot get good fruit, we may offer you another flavour or a full refund.",
    ]),
    ("3. Cancellations, changes and refunds", [
        "The table below sets out what happens when you cancel or change an order. The notice is counted from the "
        "time we receive your message on WhatsApp or by email to the date. A change of date counts as a "
        "cancellation and a new order, except that the first change of date made at least 72 hours before is free.",
    ]),
]
CANCEL_TABLE = [
    ("Situation", "Notice before the date", "What happens"),
    ("Cancel a standard cake order", "72 hours or more", "Full refund less a S$10 admin fee"),
    ("Cancel a standard cake order", "24 to 72 hours", "50% refund, or 100% store credit valid 3 months"),
    ("Cancel a standard cake order", "Less than 24 hours", "No refund and no store credit"),
    ("Cancel a cake with fondant figurines or a character / sculpted cake",
     "More than 3 days", "Full refund less a S$10 admin fee"),
    ("Cancel a cake with fondant figurines or a character / sculpted cake",
     "3 days or less", "No refund: decorating has started"),
    ("Cancel a tiered cake", "14 days or more", "The 30% deposit is kept; any balance paid is refunded"),
    ("Cancel a tiered cake", "Less than 14 days", "No refund"),
    ("Change the date (first time)", "72 hours or more", "Free, subject to availability"),
    ("Change the date (second time or later)", "72 hours or more", "S$10 admin fee each time"),
    ("Change the flavour or size", "72 hours or more", "Free; pay or receive the price difference"),
    ("Change the flavour or size", "Less than 72 hours", "Not possible"),
    ("Change the message on the plaque", "12 hours or more", "Free"),
    ("Change the delivery address", "24 hours or more", "Free; the new zone's fee applies"),
    ("Change from delivery to collection", "24 hours or more", "Delivery fee refunded"),
    ("Change from collection to delivery", "24 hours or more", "Delivery fee payable, if a slot is free"),
    ("Cancel cupcakes or mini bento cakes", "72 hours or more", "Full refund less a S$10 admin fee"),
    ("Cancel cupcakes or mini bento cakes", "Less than 72 hours", "No refund"),
    ("Add an add-on (candles, topper, gold leaf)", "24 hours or more", "Pay the add-on price"),
    ("Add an edible photo print or fresh flowers", "48 hours or more", "Pay the add-on price"),
    ("Add a fondant figurine", "5 days or more", "Pay S$25 per figurine"),
    ("Durian Mao Shan Wang cakes", "any", "Same as a standard cake order"),
    ("Christmas log cakes and fruitcake", "any", "No cancellations after 20 December; date changes only within 22-24 Dec"),
    ("Display (ready-made) cakes bought in a shop", "-", "No refund or exchange once paid"),
]
PDF_SECTIONS_AFTER_TABLE = [
    ("4. Store credit", [
        "Store credit is issued as a code sent by WhatsApp. It is valid for 3 months, can be used for any cake or "
        "bake in our shops or online, and cannot be exchanged for cash. Only one store credit code can be used per order.",
    ]),
    ("5. Late collection and failed delivery", [
        "Cakes not collected by closing time on the date are kept chilled for 1 more day. Cakes not collected by "
        "closing time on the next day are disposed of, and no refund is given.",
        "If our driver cannot deliver because nobody is there to receive the cake, see our Ordering, Pickup & "
        "Delivery guide: you may collect it from Tampines by 8pm on the same day, or we redeliver it on the next "
        "delivery day for the full delivery fee again. A failed delivery is not refunded.",
    ]),
    ("6. Damaged cakes and quality complaints", [
        "Delivered cakes: if your cake arrives damaged, take photos before moving or cutting it and send them to us "
        "on WhatsApp within 2 hours of delivery. If the damage happened in transit, we will, at your choice, remake "
        "and redeliver the cake free of charge on the next delivery day or refund the cake and delivery fee in full.",
        "Collected cakes: please check your cake at the counter. Once a cake leaves our shop, we are not responsible "
        "for damage during transport.",
        "Taste and quality: if something is wrong with the taste or texture, keep the rest of the cake in the fridge "
        "and contact us within 24 hours of collection or delivery. We may ask to see or collect the cake. We decide "
        "on a refund, a partial refund or store credit case by case.",
        "Small differences in colour, piping or the position of decorations compared with a reference picture are "
        "normal for handmade cakes and are not a reason for a refund.",
    ]),
    ("7. How refunds are paid", [
        "Refunds go back to the original payment method. PayNow refunds are made within 3 working days; card "
        "refunds are made within 7 working days, and your bank may take longer to show them. Cash payments in "
        "our shops are refunded by PayNow.",
    ]),
    ("8. Deposits", [
        "For orders of S$300 and above paid with a 50% deposit, the balance must be paid at least 3 days before the "
        "date. If it is not paid by then, we treat the order as cancelled with less than 72 hours' notice. The 30% "
        "deposit for tiered cakes is never refunded.",
    ]),
    ("9. Allergies", [
        "Our kitchen handles eggs, milk, wheat, peanuts, tree nuts, soy and sesame. We cannot accept responsibility "
        "for allergic reactions where the allergen was listed in our FAQ or on the cake label, or where traces "
        "were possible. We do not refund cakes because of an allergy that was not told to us before ordering.",
    ]),
    ("10. Feedback and complaints", [
        "Send feedback to hello@pandanoven.com.sg or on WhatsApp at +65 8765 3120. We reply within 2 working days. "
        "If you are not satisfied with our reply, you may ask for your complaint to be reviewed by our founder, "
        "Ms Melissa Goh.",
    ]),
    ("11. Photos of your cake", [
        "We may photograph the cakes we make and share the photos on our website and social media, without your "
        "name, message or any personal details. If you prefer that we do not share photos of your cake, tell us "
        "when you order.",
    ]),
    ("12. Personal data", [
        "We use your name, mobile number, email and delivery address only to process your order, to deliver it, "
        "and, if you are a Pandan Perks member, to run your membership. We give your address and mobile number "
        "to our driver on the delivery day only. Write to hello@pandanoven.com.sg to see, correct or delete your "
        "data.",
    ]),
    ("13. Changes to these terms", [
        "We may update these terms from time to time. The terms that apply to your order are those in force on the "
        "day you paid. This version replaces all earlier versions.",
    ]),
]


def pdf_blocks() -> list:
    blocks: list = [("p", PDF_INTRO)]
    for heading, paragraphs in PDF_SECTIONS_BEFORE_TABLE:
        blocks += [("h", heading)] + [("p", para) for para in paragraphs]
    blocks += [("widths", (70, 40, 64)), ("table", CANCEL_TABLE)]
    for heading, paragraphs in PDF_SECTIONS_AFTER_TABLE:
        blocks += [("h", heading)] + [("p", para) for para in paragraphs]
    return blocks


# ---------------------------------------------------------------------------- DOCX
DOCX_TITLE = "Corporate & Bulk Orders 2026"
CORP_ITEMS = [
    ("Item", "Unit", "Price before GST", "Minimum order", "Notice"),
    ("Mini cupcakes, assorted", "box of 12", "S$28.00", "5 boxes", "7 working days"),
    ("Mini bento cake (10 cm), any Classic flavour", "each", "S$14.00", "20 pieces", "7 working days"),
    ("Logo cookies (printed, individually wrapped)", "each", "S$3.60", "50 pieces", "10 working days"),
    ("Mini tart platter (egg, lemon, pandan)", "platter of 30", "S$55.00", "2 platters", "7 working days"),
    ("Tea-break box (2 kueh, 1 pastry, 1 mini tart)", "per person", "S$8.50", "20 persons", "7 working days"),
    ("Whole cakes for events", "each", "retail price less 9% GST", "3 cakes", "7 working days"),
    ("Branded sticker on each box", "per box", "S$0.50", "50 boxes", "10 working days"),
]
VOLUME = [
    ("Order value before GST", "Discount"),
    ("S$150 to S$499.99", "none"),
    ("S$500 to S$999.99", "5%"),
    ("S$1,000 and above", "8%"),
]


DOCX_BLOCKS = [
    ("p", "We bake for office parties, product launches, school events, seminars and client gifts. Corporate and "
          "bulk orders are handled by Mr Daniel Ong (corporate@pandanoven.com.sg). Unlike our retail prices, "
          "corporate prices are quoted BEFORE GST: 9% GST is added to every corporate invoice. The minimum "
          "corporate order is S$150 before GST."),
    ("h", "1. What we offer"),
    ("table", CORP_ITEMS),
    ("p", "Logo cookies: send your logo as a vector file (AI, EPS, SVG or PDF). We send a digital proof within 2 "
          "working days; the 10 working days' notice starts when you approve the proof. Up to 2 colours for the "
          "printed design; full-colour printing is S$0.40 more per cookie."),
    ("p", "Tea-break boxes come with a printed menu card and are individually packed. Halal status, allergens and "
          "ingredients are the same as for our retail products; see our FAQ."),
    ("h", "2. Volume discount"),
    ("p", "The discount applies to the order value before GST and before delivery, in one order for one date."),
    ("table", VOLUME),
    ("p", "The volume discount cannot be combined with Pandan Perks offers or store credit."),
    ("h", "3. Delivery"),
    ("bullets", [
        "Free delivery to one address for orders of S$400 and above before GST, on any delivery day (Tuesday to Sunday).",
        "Orders below S$400 pay our retail delivery fees by zone (see our Ordering, Pickup & Delivery guide).",
        "Delivery to more than one address: S$15 for each extra address in Zones A and B, S$20 in Zone C, before GST.",
        "We can deliver from 8am for early meetings on weekdays, for S$20 before GST.",
    ]),
    ("h", "4. Payment and invoices"),
    ("bullets", [
        "First order: 50% deposit to confirm, balance before delivery.",
        "Companies registered in Singapore with 3 or more paid orders with us may ask for a 30-day invoice account.",
        "We accept purchase orders (PO). Please put the PO number on your order so it appears on the invoice.",
        "Payment by bank transfer or PayNow to UEN 201945678K.",
    ]),
    ("h", "5. Changes and cancellations"),
    ("bullets", [
        "Quantities can be increased up to 3 working days before delivery, subject to availability, and reduced by "
        "up to 10% until 5 working days before delivery.",
        "Cancellation 5 working days or more before delivery: full refund of the deposit, less a S$30 admin fee.",
        "Cancellation less than 5 working days before delivery: the deposit is not refunded.",
        "Logo cookies and branded stickers cannot be cancelled or refunded once printing has started, which is 5 "
        "working days before delivery.",
    ]),
    ("h", "6. Tasting"),
    ("p", "For orders above S$1,000 before GST, we send a free tasting box of 4 mini bento cakes to your office "
          "before you confirm. For smaller orders, a tasting box is S$20 before GST, deducted from your order if "
          "you confirm within 14 days."),
]


if __name__ == "__main__":
    write_pdf(KB / "order-terms-and-refunds.pdf", PDF_TITLE, f"{COMPANY} - effective 1 February 2026",
              COMPANY, pdf_blocks())
    write_docx(KB / "corporate-and-bulk-orders.docx", DOCX_TITLE, f"{COMPANY} · Terms effective 1 February 2026",
               COMPANY, DOCX_BLOCKS)
    print("wrote", KB / "order-terms-and-refunds.pdf", "and", KB / "corporate-and-bulk-orders.docx")
