"""The custody report (`sealbox report`, and the custody-report.html in an export package):
the HTML page (page), its custody reading (chain, incident), sentences (words, sentences), the
timeline figure (timeline), the email section (email) and the PDF made from it (pdf)."""

from manifest.handover.report.email import email_summary as _email_summary
from manifest.handover.report.page import DEFAULT_ITEM_ROWS, render_report
from manifest.handover.report.summary import timestamp_line, verdict_word

__all__ = ["DEFAULT_ITEM_ROWS", "_email_summary", "render_report", "timestamp_line", "verdict_word"]
