"""CSV import of companies, numbers, clients, carers, planning and punches (SPEC.md section 6)."""

from .csvfile import ImportFileError
from .writer import KINDS, ImportRejected, ImportReport, LineError, import_file

__all__ = ["KINDS", "ImportFileError", "ImportRejected", "ImportReport", "LineError", "import_file"]
