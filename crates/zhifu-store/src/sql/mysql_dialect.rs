//! MySQL's dialect, for the statements the other modules write once for
//! all backends: they use PostgreSQL's `$N` placeholders (SQLite accepts
//! them too) and `CAST(… AS TEXT | BIGINT)`. MySQL and MariaDB take `?`
//! placeholders, bound in the order they appear, and spell the casts
//! `CHAR` and `SIGNED`. [`translate`] rewrites both, and re-orders (or
//! repeats) the bound values to match: `$2 … $1 … $2` becomes
//! `? … ? … ?` bound with the second, first and second value.
//!
//! What a rewrite cannot express (no `RETURNING` on `UPDATE`, `ON DUPLICATE
//! KEY` instead of `ON CONFLICT`, claims with `FOR UPDATE SKIP LOCKED` in a
//! separate `SELECT`) is written out by the callers for MySQL, next to the
//! shared text; see `docs/storage.md`.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Error, Execute, RawSql};
use sqlx_core::any::AnyArgumentBuffer;

/// A statement ready for a MySQL-family server: a prepared statement with
/// its values, or (a statement sent without arguments, as `raw_sql` does)
/// plain text, which may hold several statements.
pub(super) enum Translated {
    Prepared(Query<'static, Any, AnyArguments>),
    Raw(RawSql),
}

impl<'q> Execute<'q, Any> for Translated {
    fn sql(self) -> sqlx::SqlStr {
        match self {
            Translated::Prepared(q) => q.sql(),
            Translated::Raw(q) => <RawSql as Execute<'q, Any>>::sql(q),
        }
    }

    fn statement(&self) -> Option<&sqlx::any::AnyStatement> {
        match self {
            Translated::Prepared(q) => q.statement(),
            Translated::Raw(q) => <RawSql as Execute<'q, Any>>::statement(q),
        }
    }

    fn take_arguments(&mut self) -> Result<Option<AnyArguments>, sqlx::error::BoxDynError> {
        match self {
            Translated::Prepared(q) => q.take_arguments(),
            Translated::Raw(q) => <RawSql as Execute<'q, Any>>::take_arguments(q),
        }
    }

    fn persistent(&self) -> bool {
        match self {
            Translated::Prepared(q) => q.persistent(),
            Translated::Raw(q) => <RawSql as Execute<'q, Any>>::persistent(q),
        }
    }
}

/// `query` in MySQL's dialect (see the module doc).
pub(super) fn translate_query<'q, E: Execute<'q, Any>>(mut query: E) -> Result<Translated, Error> {
    let arguments = query.take_arguments().map_err(Error::Encode)?;
    let sql = query.sql();
    let (text, arguments) = translate(sql.as_str(), arguments)?;
    Ok(match arguments {
        Some(arguments) => Translated::Prepared(sqlx::query_with(AssertSqlSafe(text), arguments)),
        None => Translated::Raw(sqlx::raw_sql(AssertSqlSafe(text))),
    })
}

/// `sql` with `?` for each `$N` and MySQL's cast types, and `arguments`
/// in the order the `?` need them.
///
/// # Errors
/// A `$N` with no N-th value: the statement is wrong, not the input.
pub(super) fn translate(
    sql: &str,
    arguments: Option<AnyArguments>,
) -> Result<(String, Option<AnyArguments>), Error> {
    let mut out = String::with_capacity(sql.len());
    let mut order: Vec<usize> = Vec::new();
    let mut chars = sql.char_indices().peekable();
    let mut in_literal = false;
    while let Some((_, c)) = chars.next() {
        if in_literal {
            // `''` inside a literal closes and reopens it: same outcome.
            in_literal = c != '\'';
            out.push(c);
            continue;
        }
        match c {
            '\'' => {
                in_literal = true;
                out.push(c);
            }
            '$' if chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut n = 0usize;
                while let Some((_, d)) = chars.peek().copied() {
                    let Some(digit) = d.to_digit(10) else { break };
                    n = n * 10 + digit as usize;
                    chars.next();
                }
                order.push(n);
                out.push('?');
            }
            _ => out.push(c),
        }
    }
    let out = out
        .replace(" AS TEXT)", " AS CHAR)")
        .replace(" AS BIGINT)", " AS SIGNED)");
    let Some(arguments) = arguments else {
        return if order.is_empty() {
            Ok((out, None))
        } else {
            Err(placeholder_error(sql))
        };
    };
    // The bound values, read and rebuilt through sqlx's public but
    // `#[doc(hidden)]` fields: the one way to re-order them after binding.
    // The workspace pins sqlx 0.9; a change there fails to compile here.
    let values = arguments.values.0;
    if order.iter().copied().eq(1..=values.len()) {
        return Ok((
            out,
            Some(AnyArguments {
                values: AnyArgumentBuffer(values),
            }),
        ));
    }
    let mut reordered = Vec::with_capacity(order.len());
    for n in order {
        let value = n
            .checked_sub(1)
            .and_then(|i| values.get(i))
            .ok_or_else(|| placeholder_error(sql))?;
        reordered.push(value.clone());
    }
    Ok((
        out,
        Some(AnyArguments {
            values: AnyArgumentBuffer(reordered),
        }),
    ))
}

fn placeholder_error(sql: &str) -> Error {
    Error::Protocol(format!(
        "a placeholder of this statement has no value: {sql}"
    ))
}

#[cfg(test)]
mod tests {
    use sqlx::Arguments;
    use sqlx::any::AnyArguments;

    use super::translate;

    fn args(values: &[i64]) -> AnyArguments {
        let mut a = AnyArguments::default();
        for v in values {
            a.add(*v).expect("an i64 binds");
        }
        a
    }

    fn ints(a: &AnyArguments) -> Vec<String> {
        a.values.0.iter().map(|v| format!("{v:?}")).collect()
    }

    #[test]
    fn placeholders_become_question_marks_in_binding_order() {
        let (sql, a) = translate(
            "UPDATE t SET a = $2, b = $1 WHERE c = $2 AND d = 'x$1'",
            Some(args(&[10, 20])),
        )
        .expect("translates");
        assert_eq!(sql, "UPDATE t SET a = ?, b = ? WHERE c = ? AND d = 'x$1'");
        let got = ints(&a.expect("arguments kept"));
        assert_eq!(got, ints(&args(&[20, 10, 20])));
    }

    #[test]
    fn in_order_placeholders_keep_their_values() {
        let (sql, a) = translate(
            "SELECT CAST($1 AS TEXT) IS NULL, CAST(COUNT(*) AS BIGINT) FROM t LIMIT $2",
            Some(args(&[1, 2])),
        )
        .expect("translates");
        assert_eq!(
            sql,
            "SELECT CAST(? AS CHAR) IS NULL, CAST(COUNT(*) AS SIGNED) FROM t LIMIT ?"
        );
        assert_eq!(ints(&a.expect("arguments kept")), ints(&args(&[1, 2])));
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error() {
        assert!(translate("SELECT $3", Some(args(&[1]))).is_err());
        assert!(translate("SELECT $1", None).is_err());
        assert!(translate("SELECT $0", Some(args(&[1]))).is_err());
    }
}
