//! [`ExprError`]: why a path or a condition does not parse, as a value a caller can match on
//! (a flow definition's validation, a plugin's config check) rather than a string. Written by hand
//! rather than with thiserror: this crate builds inside every plugin, whose lock files it must
//! not grow.

/// Why an expression is not well formed; its `Display` is the message the API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprError {
    /// A path that does not start with `$`.
    NoRoot {
        /// The path.
        path: String,
    },
    /// `$.a..b`: a field name that is empty.
    EmptyField {
        /// The path.
        path: String,
        /// 1-based position after the `$`.
        at: usize,
    },
    /// A `[` without its `]`.
    Unclosed {
        /// The path.
        path: String,
    },
    /// `[x]` that is neither `*`, a quoted name nor an index.
    NotAnIndex {
        /// The path.
        path: String,
        /// What the brackets held.
        inner: String,
    },
    /// A character where a `.` or `[` should be.
    Unexpected {
        /// The path.
        path: String,
        /// The character.
        found: char,
        /// 1-based position after the `$`.
        at: usize,
    },
    /// A condition's field that is neither `$.path` nor `header:NAME`.
    Field {
        /// The field.
        field: String,
    },
    /// A test other than `exists` without its `value`.
    NoValue {
        /// The field tested.
        field: String,
    },
}

impl std::fmt::Display for ExprError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExprError::NoRoot { path } => write!(f, "path `{path}` must start with `$`"),
            ExprError::EmptyField { path, at } => write!(f, "path `{path}`: empty field name at {at}"),
            ExprError::Unclosed { path } => write!(f, "path `{path}`: unclosed `[`"),
            ExprError::NotAnIndex { path, inner } => write!(f, "path `{path}`: `[{inner}]` is not an index"),
            ExprError::Unexpected { path, found, at } => write!(f, "path `{path}`: unexpected `{found}` at {at}"),
            ExprError::Field { field } => write!(f, "field `{field}` must be `$.path` or `header:NAME`"),
            ExprError::NoValue { field } => write!(f, "the condition on `{field}` needs a `value`"),
        }
    }
}

impl std::error::Error for ExprError {}

/// Its message, so code that reports problems as text (`Result<_, String>`) keeps using `?`.
impl From<ExprError> for String {
    fn from(err: ExprError) -> String {
        err.to_string()
    }
}
