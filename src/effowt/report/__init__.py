"""Results pages for tracking output folders (``effowt report``)."""

from effowt.report.page import REPORT_FILE, load_video_rows, write_report

__all__ = ["REPORT_FILE", "load_video_rows", "write_report"]
