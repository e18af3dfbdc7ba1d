//! The planner's error type.

/// What can be wrong with a statement before it runs.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The text does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),

    /// The statement names a type Tributary cannot store.
    #[error("type {0} is not supported")]
    UnsupportedType(String),

    /// A construct that parses but is not supported.
    #[error("{0} is not supported")]
    NotSupported(String),

    /// A `WITH (...)` option is unknown or has a bad value.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// A column is named twice, or a clause names a column that is not there.
    #[error("column \"{0}\" does not exist")]
    UnknownColumn(String),

    /// A column name appears twice.
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),

    /// A stored definition does not read back (a bug or a newer version).
    #[error("stored definition of \"{name}\" is unreadable: {reason}")]
    CorruptDefinition {
        /// The object.
        name: String,
        /// What failed.
        reason: String,
    },
}

/// The planner result type.
pub type Result<T, E = PlanError> = std::result::Result<T, E>;

impl From<datafusion::sql::sqlparser::parser::ParserError> for PlanError {
    fn from(e: datafusion::sql::sqlparser::parser::ParserError) -> Self {
        use datafusion::sql::sqlparser::parser::ParserError;
        match e {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => Self::Syntax(m),
            ParserError::RecursionLimitExceeded => {
                Self::Syntax("statement is nested too deeply".into())
            }
        }
    }
}
