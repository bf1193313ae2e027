"""The README's provider table is the matrix file, verbatim: the documentation cannot claim a
cell the matrix test did not pass."""

from __future__ import annotations

import re

from tests.matrix.matrix_file import MATRIX_FILE

README = MATRIX_FILE.parents[1] / "README.md"
SECTION = re.compile(
    r"<!-- provider-matrix:begin -->\n(.*?)<!-- provider-matrix:end -->", re.DOTALL
)


def test_the_readme_provider_table_is_the_matrix_file() -> None:
    [section] = SECTION.findall(README.read_text())
    assert section == MATRIX_FILE.read_text()


def test_every_cell_is_a_pass_or_a_skip_with_its_reason() -> None:
    rows = [line for line in MATRIX_FILE.read_text().splitlines() if line.startswith("| ")]
    header, *cells = rows
    assert header.startswith("| harness \\ compute | local | relay | e2b")
    for row in cells:
        for cell in row.strip("| ").split(" | ")[1:]:
            assert cell == "pass" or re.fullmatch(r"skip: .+ (install|run|setup).*", cell), cell
