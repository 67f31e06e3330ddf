//! `aggregate`: count, sum, avg, min and max of JSON records, grouped by a field.
//!
//! Config:
//! - `group_by` (optional): a path; records with the same value there form a group. Without it the
//!   whole batch is one group. Records missing the field group under `null`.
//! - `aggregations`: a list of `{"op": "count" | "sum" | "avg" | "min" | "max", "field": "$.total",
//!   "as": "total"}`; `field` is not needed for `count`. Non-numeric or missing values are skipped by
//!   the numeric operators; `avg`, `min` and `max` of no values are `null`.
//!
//! Output: one record per group, in order of first appearance:
//! `{"group": <value>, "<as>": <result>, ...}` (no `group` field without `group_by`).

use plugboard_plugin_sdk::path::Path;
use plugboard_plugin_sdk::{Batch, PluginError, Record, Transformer, config, json};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Op {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Aggregation {
    op: Op,
    #[serde(default)]
    field: Option<String>,
    #[serde(rename = "as")]
    name: String,
}

/// Running state of one aggregation in one group.
#[derive(Clone, Default)]
struct Acc {
    count: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Acc {
    fn add(&mut self, value: Option<f64>) {
        if let Some(v) = value {
            self.count += 1;
            self.sum += v;
            self.min = Some(self.min.map_or(v, |m| m.min(v)));
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
        }
    }

    fn result(&self, op: Op, records: u64) -> Value {
        let number = |v: f64| serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number);
        match op {
            Op::Count => Value::from(records),
            Op::Sum => number(self.sum),
            Op::Avg if self.count == 0 => Value::Null,
            Op::Avg => number(self.sum / self.count as f64),
            Op::Min => self.min.map_or(Value::Null, number),
            Op::Max => self.max.map_or(Value::Null, number),
        }
    }
}

struct Aggregate;

impl Transformer for Aggregate {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let group_by =
            config::get("group_by")?.map(|text| Path::parse(&text)).transpose().map_err(PluginError::from)?;
        let aggregations: Vec<Aggregation> = config::json("aggregations")?;
        let fields = aggregations
            .iter()
            .map(|agg| match (agg.op, &agg.field) {
                (Op::Count, _) => Ok(None),
                (_, Some(field)) => Path::parse(field).map(Some).map_err(|err| err.to_string()),
                (_, None) => Err(format!("aggregation `{}` needs a `field`", agg.name)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(PluginError::InvalidConfig)?;

        let values: Vec<Value> = json::parse_batch(&input)?;
        // Groups in order of first appearance; a linear scan keeps JSON values as keys without
        // needing them to be hashable, and batches are small.
        let mut groups: Vec<(Value, u64, Vec<Acc>)> = Vec::new();
        for value in &values {
            let key = group_by.as_ref().and_then(|path| path.get(value)).unwrap_or(Value::Null);
            let index = match groups.iter().position(|(k, _, _)| *k == key) {
                Some(index) => index,
                None => {
                    groups.push((key, 0, vec![Acc::default(); aggregations.len()]));
                    groups.len() - 1
                }
            };
            let (_, records, accs) = &mut groups[index];
            *records += 1;
            for (acc, field) in accs.iter_mut().zip(&fields) {
                acc.add(field.as_ref().and_then(|path| path.get(value)).and_then(|v| v.as_f64()));
            }
        }
        groups
            .into_iter()
            .map(|(key, records, accs)| {
                let mut out = Map::new();
                if group_by.is_some() {
                    out.insert("group".into(), key);
                }
                for (agg, acc) in aggregations.iter().zip(&accs) {
                    out.insert(agg.name.clone(), acc.result(agg.op, records));
                }
                Record::from_json(&Value::Object(out))
            })
            .collect()
    }
}

plugboard_plugin_sdk::export_transformer!(Aggregate);
