//! Terminal output as docker prints it: columns padded to their widest cell, sizes in decimal
//! units with three significant digits.

use std::io::Write;

/// Space between columns, as docker's tab writer leaves it.
const GAP: usize = 3;

/// Rows of cells written as aligned columns. Every column but the last is padded to its
/// widest cell plus [`GAP`] spaces, so a long status never runs into the next column.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the table, one line per row, without trailing spaces.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count() + GAP;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// A size as `docker images` prints it: decimal units (`B`, `kB`, `MB`, ...), three
/// significant digits, trailing zeros dropped, no space (`123B`, `5.6kB`, `1.07MB`). Unlike
/// docker, 999,999 bytes is `1MB` rather than `1e+03kB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let mut text = significant(value);
    // Rounding can carry into the next unit: 999.9kB shows as 1MB.
    if text == "1000" && unit < UNITS.len() - 1 {
        unit += 1;
        text = "1".to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

/// `value` (below 1000) with three significant digits and no trailing zeros, as Go's `%.3g`.
fn significant(value: f64) -> String {
    let decimals = match value {
        v if v < 10.0 => 2,
        v if v < 100.0 => 1,
        _ => 0,
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        let cases = [
            (0, "0B"),
            (123, "123B"),
            (999, "999B"),
            (1000, "1kB"),
            (5_600, "5.6kB"),
            (5_649, "5.65kB"),
            (12_345, "12.3kB"),
            (999_499, "999kB"),
            (999_999, "1MB"),
            (1_070_000, "1.07MB"),
            (1_074_000, "1.07MB"),
            (77_800_000, "77.8MB"),
            (4_200_000_000, "4.2GB"),
            (u64::MAX, "18.4EB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(size(bytes), text, "{bytes}");
        }
    }

    #[test]
    fn columns_are_padded_to_their_widest_cell() {
        let mut table = Table::new(&["STATUS", "NAMES"]);
        table.row(vec!["Exited (137) 0 seconds ago".into(), "web".into()]);
        table.row(vec!["Up 1 second".into(), "db".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "STATUS                       NAMES\n\
             Exited (137) 0 seconds ago   web\n\
             Up 1 second                  db\n"
        );
    }

    #[test]
    fn a_table_with_no_rows_is_its_header() {
        let mut out = Vec::new();
        Table::new(&["IMAGE", "ID", "SIZE"])
            .write(&mut out)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "IMAGE   ID   SIZE\n");
    }
}
