//! `filter`: keeps the JSON records that match conditions from config.
//!
//! Config `condition` is one condition or a combination:
//!
//! ```json
//! {"all": [{"field": "$.status", "op": "equals", "value": "paid"},
//!          {"any": [{"field": "$.total", "op": "gt", "value": 100},
//!                   {"field": "$.tags", "op": "contains", "value": "vip"}]}]}
//! ```
//!
//! The language is Plugboard's one record-expression language (`plugboard-expr`, through the SDK),
//! the same that flow route conditions use: `field` is a path (`$.a.b[0]`, `$.items[-1]`,
//! `$.items[*].sku`) or `header:NAME`; operators `equals`, `not-equals`, `gt`, `gte`, `lt`, `lte`
//! (numbers, or strings compared lexically), `contains` (substring of a string, element of an
//! array, key of an object) and `exists` (`value` true or false; default true). A missing field
//! matches only `not-equals` and `exists: false`.

use plugboard_plugin_sdk::condition::Condition;
use plugboard_plugin_sdk::projection::Projection;
use plugboard_plugin_sdk::{Batch, PluginError, Transformer, config};

struct Filter;

impl Transformer for Filter {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let condition: Condition = config::json("condition")?;
        let condition = condition.compile().map_err(PluginError::from)?;
        // Only the fields the condition reads are built; records pass through unchanged.
        let values = Projection::of(condition.paths()).parse_batch(&input)?;
        Ok(input
            .into_iter()
            .zip(values)
            .filter(|(record, value)| {
                let header = |name: &str| record.header(name).map(|v| String::from_utf8_lossy(v).into_owned());
                condition.matches(value, &header)
            })
            .map(|(record, _)| record)
            .collect())
    }
}

plugboard_plugin_sdk::export_transformer!(Filter);
