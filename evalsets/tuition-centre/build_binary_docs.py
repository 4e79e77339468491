"""Rebuilds the two binary documents of the tuition-centre evaluation KB.

Writes kb/terms-and-conditions.pdf and kb/holiday-camps-dec-2026.docx with the shared writers
in ../kbdocs.py; the text lives here so they can be rebuilt. The PDF's withdrawal-and-refund
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
COMPANY = "Kampong Scholars Learning Centre Pte Ltd"

# ----------------------------------------------------------------------------- PDF
PDF_TITLE = "Terms & Conditions of Enrolment"
REFUND_TABLE = [
    ["Situation", "When", "What is refunded or charged"],
    ["Registration fee (S$80)", "any time", "Never refunded"],
    ["Withdraw from a subject before the term starts", "14 days or more before the first lesson",
     "Full refund of the term fee and materials fee"],
    ["Withdraw from a subject before the term starts", "Less than 14 days before the first lesson",
     "Term fee refunded less a S$100 admin fee per subject; materials fee refunded if materials not yet issued"],
    ["Withdraw from a subject during the term", "after the first lesson of the term",
     "No refund for the current term; the withdrawal takes effect at the end of the term"],
    ["Not continuing next term", "written notice 4 weeks or more before the next term starts",
     "Nothing charged for the next term"],
    ["Not continuing next term", "written notice less than 4 weeks before the next term starts",
     "50% of the next term's fee is charged"],
    ["Medical withdrawal (hospitalisation or medical leave of 4 weeks or more, with a doctor's memo)",
     "during the term", "Pro-rated refund of the lessons not yet held; the materials fee is not refunded"],
    ["Family moving overseas (with proof, e.g. a flight booking or overseas school offer)",
     "during the term", "Pro-rated refund of the lessons not yet held, less a S$100 admin fee"],
    ["Class cancelled by us (fewer than 3 students)", "any time",
     "Full refund of the remaining lessons, or a free transfer to another class"],
    ["Missed lessons", "any time", "Not refunded; make-up lessons as in our Enrolment & Class Policies"],
    ["Materials fee", "after materials are issued", "Not refunded"],
    ["Trial lesson", "cancelled 24 hours or more before", "Full refund or free change of date"],
    ["Trial lesson", "cancelled less than 24 hours before, or no-show", "No refund"],
    ["Holiday camp", "cancelled 14 days or more before the first day", "Full refund less a S$20 admin fee"],
    ["Holiday camp", "cancelled 7 to 13 days before the first day", "50% refund"],
    ["Holiday camp", "cancelled less than 7 days before the first day",
     "No refund; the place may be transferred to another child"],
    ["Holiday camp cancelled by us (fewer than 4 participants)", "any time", "Full refund"],
    ["Intensive class", "any time", "Same rules as a group class"],
]
PDF_BLOCKS = [
    ("p", "These terms apply to every student enrolled at Kampong Scholars Learning Centre Pte Ltd "
          "(UEN 201733215M), at our Bishan and Punggol branches, in regular classes, Intensive classes, trial "
          "lessons and holiday camps. By paying the registration fee, the parent or guardian accepts these terms. "
          "We are not GST-registered; no GST is charged."),
    ("h", "1. Enrolment"),
    ("p", "A place in a class is confirmed only when the term fee is paid. The registration fee of S$80 is paid "
          "once per student when first enrolling, and is waived for a sibling of a current student. We may "
          "decline or end an enrolment if fees remain unpaid, or if a student's behaviour disrupts the class after "
          "a written warning to the parent."),
    ("h", "2. Fees and payment"),
    ("p", "Term fees and materials fees are payable before the first lesson of each term. A S$20 late payment fee "
          "applies if the fees are not paid by the first lesson, and the seat is released if they are still "
          "unpaid after the second lesson. Fees are reviewed once a year; we give at least 2 months' notice of any "
          "increase. Payment is by PayNow, bank transfer, GIRO or NETS; we do not accept credit cards or cash."),
    ("h", "3. Withdrawals and refunds"),
    ("p", "All notices of withdrawal must be in writing, by email to hello@kampongscholars.sg or through the "
          "parent app; a message to a teacher is not a notice. The table below sets out what is refunded. Refunds "
          "are paid by PayNow or bank transfer within 14 days of the withdrawal being confirmed."),
    ("widths", (66, 48, 60)),
    ("table", REFUND_TABLE),
    ("h", "4. Lessons, make-ups and replacements"),
    ("p", "A term has 10 lessons (6 lessons in Term 4 for Primary 6 and Secondary 4, charged at 6/10 of the term "
          "fee). Lessons that fall on public holidays, or that we cancel because of haze or a school closure, are "
          "held in the replacement week. Make-up lessons, class changes and branch transfers follow our Enrolment "
          "& Class Policies. If a teacher is ill, a relief teacher of the same subject takes the class."),
    ("h", "5. Conduct"),
    ("p", "Students are expected to be punctual, to bring their materials and homework, and to treat teachers and "
          "classmates with respect. Damage to the centre's property caused on purpose will be charged to the "
          "parent. Mobile phones must be switched off or on silent during lessons."),
    ("h", "6. Safety"),
    ("p", "Students in Primary 1 to Primary 3 are released only to a parent, guardian or a person named on the "
          "registration form, inside the centre. We are not responsible for students before their lesson starts "
          "or after they leave the centre. Please tell us about any medical condition or allergy on the "
          "registration form."),
    ("h", "7. Photos and recordings"),
    ("p", "Intensive classes are recorded for revision; recordings are shared only with the families in that class "
          "and are deleted at the end of the term. We do not use a student's name or photo in publicity without "
          "written permission from a parent."),
    ("h", "8. Personal data"),
    ("p", "We collect the personal data of students and parents only to run classes, communicate about lessons, "
          "fees and progress, and meet our legal obligations. We keep student records for 2 years after a student "
          "leaves. To see, correct or withdraw consent for your data, write to our data protection officer, "
          "Ms Jasmine Koh, at dpo@kampongscholars.sg."),
    ("h", "9. Feedback"),
    ("p", "Feedback can be sent to hello@kampongscholars.sg. We reply within 3 working days. A complaint about a "
          "teacher is reviewed by the centre manager, Mr Gerald Lim, who will call the parent within 5 working days."),
    ("h", "10. Changes to these terms"),
    ("p", "We may change these terms with 1 month's notice by email. This version applies from 1 November 2026 "
          "and replaces all earlier versions."),
]

# ---------------------------------------------------------------------------- DOCX
DOCX_TITLE = "December Holiday Camps 2026"
CAMPS = [
    ["Camp", "For", "Dates (2026)", "Time", "Branch", "Standard price", "Current student price"],
    ["PSLE Maths Head Start", "P5 students going to P6 in 2027", "14-17 Dec (4 days)", "9am-12pm", "Bishan",
     "S$320", "S$280"],
    ["Creative Writing Camp", "P3 to P5", "14-16 Dec (3 days)", "2pm-5pm", "Bishan and Punggol", "S$240", "S$210"],
    ["Science Discovery Camp (hands-on experiments)", "P3 and P4", "21-23 Dec (3 days)", "9am-12pm", "Punggol",
     "S$250", "S$220"],
    ["Sec 1 Bridging Camp (Maths and English)", "P6 students going to Sec 1 in 2027", "14-18 Dec (5 days)",
     "9am-1pm", "Bishan", "S$380", "S$340"],
    ["Public Speaking Camp", "P4 to P6", "21-22 Dec (2 days)", "2pm-5pm", "Bishan", "S$180", "S$160"],
    ["A Maths Jumpstart", "Sec 2 students going to Sec 3 in 2027", "28-30 Dec (3 days)", "2pm-6pm", "Bishan",
     "S$300", "S$260"],
]
DOCX_BLOCKS = [
    ("p", "Our December holiday camps are short, focused programmes to help students start the new school year "
          "confidently. Camps are open to all students, not only to students of Kampong Scholars. Prices are in "
          "S$; no GST is charged."),
    ("h", "1. Camps and prices"),
    ("table", CAMPS),
    ("p", "A current student is a student enrolled in at least one regular class with us in Term 4 2026 or Term 1 "
          "2027. Each camp has at most 12 participants and runs only with at least 4; if a camp does not run, we "
          "refund it in full."),
    ("h", "2. Discounts"),
    ("bullets", [
        "Early bird: 10% off the standard price for camps paid by 30 November 2026. The early bird does not apply "
        "to the current student price.",
        "Bring a friend: when a current student signs up together with a friend who is new to Kampong Scholars, "
        "both get S$20 off their camp fee.",
        "Two camps: 10% off the second camp for the same child in December 2026.",
        "The sibling and multi-subject discounts for regular classes do not apply to camps. Only one camp discount "
        "can be used per camp place.",
    ]),
    ("h", "3. What is included"),
    ("bullets", [
        "All camp materials, a camp workbook and a certificate of participation.",
        "A light snack and a drink at half-time. Lunch is not provided; students in morning camps may bring a "
        "packed lunch to eat at the centre until 1.30pm.",
        "Science Discovery Camp: lab coats and safety goggles are provided; please dress in clothes that can get "
        "messy.",
    ]),
    ("h", "4. Attendance"),
    ("bullets", [
        "Camps are a fixed series of days; missed days cannot be made up and are not refunded.",
        "Students should arrive 10 minutes early on the first day for registration.",
        "Parents are invited to the last 30 minutes of the Public Speaking Camp for the students' presentations.",
    ]),
    ("h", "5. Cancellations"),
    ("p", "Cancellations follow our Terms & Conditions: 14 days or more before the first day, full refund less a "
          "S$20 admin fee; 7 to 13 days, 50% refund; less than 7 days, no refund, but the place can be "
          "transferred to another child."),
    ("h", "6. How to sign up"),
    ("p", "Sign up on our website or by WhatsApp at +65 9128 4470 with the camp name, your child's name and level "
          "in 2027. Payment by PayNow to UEN 201733215M confirms the place."),
]


if __name__ == "__main__":
    write_pdf(KB / "terms-and-conditions.pdf", PDF_TITLE, f"{COMPANY} - effective 1 November 2026",
              COMPANY, PDF_BLOCKS)
    write_docx(KB / "holiday-camps-dec-2026.docx", DOCX_TITLE, f"{COMPANY} · Updated 1 November 2026",
               COMPANY, DOCX_BLOCKS)
    print("wrote", KB / "terms-and-conditions.pdf", "and", KB / "holiday-camps-dec-2026.docx")
