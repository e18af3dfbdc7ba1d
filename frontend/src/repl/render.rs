//! Result tables as text, aligned like psql's, or expanded (`\x`).

use std::fmt::Write;

/// A result: column names and rows of text (None for NULL).
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) columns: Vec<String>,
    pub(super) rows: Vec<Vec<Option<String>>>,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Renders a table with its row count.
pub(super) fn render(table: &Table, expanded: bool) -> String {
    let mut out = String::new();
    if expanded {
        let name_width = table.columns.iter().map(|c| width(c)).max().unwrap_or(0);
        for (n, row) in table.rows.iter().enumerate() {
            let _ = writeln!(
                out,
                "-[ RECORD {} ]{}",
                n + 1,
                "-".repeat(name_width.max(4))
            );
            for (column, value) in table.columns.iter().zip(row) {
                let _ = writeln!(
                    out,
                    "{column:<name_width$} | {}",
                    value.as_deref().unwrap_or("")
                );
            }
        }
    } else {
        let mut widths: Vec<usize> = table.columns.iter().map(|c| width(c)).collect();
        for row in &table.rows {
            for (i, value) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(width(value.as_deref().unwrap_or("")));
                }
            }
        }
        let header: Vec<String> = table
            .columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:^w$} "))
            .collect();
        let _ = writeln!(out, "{}", header.join("|"));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        let _ = writeln!(out, "{}", rule.join("+"));
        for row in &table.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!(" {:<w$} ", v.as_deref().unwrap_or("")))
                .collect();
            let _ = writeln!(out, "{}", cells.join("|").trim_end());
        }
    }
    let n = table.rows.len();
    let _ = writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            columns: vec!["id".into(), "name".into()],
            rows: vec![
                vec![Some("1".into()), Some("ann".into())],
                vec![Some("22".into()), None],
            ],
        }
    }

    #[test]
    fn aligned_like_psql() {
        assert_eq!(
            render(&sample(), false),
            " id | name \n----+------\n 1  | ann\n 22 |\n(2 rows)\n"
        );
    }

    #[test]
    fn expanded_records() {
        assert_eq!(
            render(&sample(), true),
            "-[ RECORD 1 ]----\nid   | 1\nname | ann\n-[ RECORD 2 ]----\nid   | 22\nname | \n(2 rows)\n"
        );
    }
}
