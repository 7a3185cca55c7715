//! [`Cue`]: what a recall starts from, its JSON form (docs/spec.md §15), and the rules for a seed's
//! id and activation as a host language gives them — one parser, used by the JSON surface (C, HTTP)
//! and by the Python binding.

use serde_json::Value;

use crate::error::{Error, Result};

/// What a recall starts from: seeds and/or a query embedding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cue {
    /// `(node, activation)` pairs; duplicates are summed and capped at 1.
    pub seeds: Vec<(u32, f32)>,
    /// Query embedding: its top `seed_k` similar nodes become seeds.
    pub embedding: Option<Vec<f32>>,
    /// Number of results; `None` = the configured `recall.k`.
    pub k: Option<usize>,
}

impl Cue {
    /// Seeds with activation 1.
    pub fn nodes(ids: impl IntoIterator<Item = u32>) -> Cue {
        Cue { seeds: ids.into_iter().map(|id| (id, 1.0)).collect(), ..Cue::default() }
    }

    /// Seeds with explicit activations.
    pub fn weighted(seeds: impl IntoIterator<Item = (u32, f32)>) -> Cue {
        Cue { seeds: seeds.into_iter().collect(), ..Cue::default() }
    }

    /// A cue seeded by embedding similarity.
    pub fn embedding(query: Vec<f32>) -> Cue {
        Cue { embedding: Some(query), ..Cue::default() }
    }

    /// Set the number of results.
    pub fn with_k(mut self, k: usize) -> Cue {
        self.k = Some(k);
        self
    }

    /// Parse the cue JSON: `{"seeds": [3, 7] | [[3, 1.0], [7, 0.5]] | {"3": 1.0}, "embedding": [..],
    /// "k": 10 | null}`.
    pub fn from_json(text: &str) -> Result<Cue> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::cue("(document)", format!("malformed JSON: {e}")))?;
        Cue::from_value(&value)
    }

    /// [`Cue::from_json`] from a parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Cue> {
        let Value::Object(object) = value else {
            return Err(Error::cue("(document)", "a cue must be a JSON object"));
        };
        let mut cue = Cue::default();
        for (key, value) in object {
            match key.as_str() {
                "seeds" => cue.seeds = parse_seeds(value)?,
                "embedding" => cue.embedding = parse_embedding(value)?,
                "k" => cue.k = parse_k(value)?,
                other => return Err(Error::cue(other, "unknown key (expected seeds, embedding, k)")),
            }
        }
        Ok(cue)
    }
}

/// The cues of a batch given in CSR form (docs/spec.md §19): cue `i` is seeded by
/// `seed_ids[offsets[i]..offsets[i + 1]]` (activations from the parallel `activations`, or 1), with
/// `k` results each. `offsets` has one entry per cue plus one, starts at 0, never decreases and ends
/// at `seed_ids.len()`; anything else is an error naming the entry. Ids are checked when the batch
/// runs.
pub fn batch_from_csr(
    seed_ids: &[u32],
    activations: Option<&[f32]>,
    offsets: &[usize],
    k: Option<usize>,
) -> Result<Vec<Cue>> {
    let Some((&first, _)) = offsets.split_first() else {
        return Err(Error::cue("offsets", "must hold one entry per cue plus one (at least [0])"));
    };
    if first != 0 {
        return Err(Error::cue("offsets[0]", format!("must be 0, got {first}")));
    }
    if let Some(activations) = activations
        && activations.len() != seed_ids.len()
    {
        return Err(Error::cue(
            "activations",
            format!("has {} entries, seed_ids has {}", activations.len(), seed_ids.len()),
        ));
    }
    let mut cues = Vec::with_capacity(offsets.len() - 1);
    for (i, pair) in offsets.windows(2).enumerate() {
        let (start, end) = (pair[0], pair[1]);
        if end < start {
            return Err(Error::cue(
                format!("offsets[{}]", i + 1),
                format!("{end} is less than offsets[{i}] = {start} (offsets never decrease)"),
            ));
        }
        if end > seed_ids.len() {
            return Err(Error::cue(
                format!("offsets[{}]", i + 1),
                format!("{end} overruns the {} seed ids", seed_ids.len()),
            ));
        }
        let ids = &seed_ids[start..end];
        let seeds = match activations {
            Some(a) => ids.iter().copied().zip(a[start..end].iter().copied()).collect(),
            None => ids.iter().map(|&id| (id, 1.0)).collect(),
        };
        cues.push(Cue { seeds, embedding: None, k });
    }
    let last = offsets[offsets.len() - 1];
    if last != seed_ids.len() {
        return Err(Error::cue(
            format!("offsets[{}]", offsets.len() - 1),
            format!("must equal the number of seed ids ({}), got {last}", seed_ids.len()),
        ));
    }
    Ok(cues)
}

/// A seed's node id as a host gave it (any integer): the `u32` id, or an error naming `field` and
/// the value.
pub fn seed_id(id: i128, field: impl Fn() -> String) -> Result<u32> {
    u32::try_from(id).map_err(|_| {
        let message = if id < 0 {
            format!("{id} is not a node id (ids are >= 0)")
        } else {
            format!("node {id} is beyond the 32-bit id space")
        };
        Error::cue(field(), message)
    })
}

/// A seed's activation as a host gave it, checked in that precision (so `1e-50` is not taken for
/// the 0 it rounds to): the `f32` in (0, 1], or an error naming `field` and the value as `shown`
/// by the host.
pub fn seed_activation(
    activation: f64,
    shown: &dyn std::fmt::Display,
    field: impl Fn() -> String,
) -> Result<f32> {
    let narrow = activation as f32;
    if !(activation > 0.0 && activation <= 1.0) || narrow == 0.0 {
        return Err(Error::cue(
            field(),
            format!("activation {shown} must be in (0, 1] (and representable as f32)"),
        ));
    }
    Ok(narrow)
}

fn parse_seeds(value: &Value) -> Result<Vec<(u32, f32)>> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = || format!("seeds[{i}]");
                match item {
                    Value::Array(pair) if pair.len() == 2 => {
                        Ok((parse_id(&pair[0], field)?, parse_activation(&pair[1], field)?))
                    }
                    Value::Number(_) => Ok((parse_id(item, field)?, 1.0)),
                    other => Err(Error::cue(
                        field(),
                        format!("expected a node id or [id, activation], got {other}"),
                    )),
                }
            })
            .collect(),
        // Note: a JSON object cannot repeat a key; serde_json keeps the last of duplicate keys.
        Value::Object(map) => map
            .iter()
            .map(|(id, activation)| {
                let field = || format!("seeds.{id}");
                let node = id.parse::<i128>().map_err(|_| Error::cue(field(), "key is not a node id"))?;
                Ok((seed_id(node, field)?, parse_activation(activation, field)?))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(Error::cue("seeds", format!("expected an array or object, got {other}"))),
    }
}

fn parse_id(value: &Value, field: impl Fn() -> String) -> Result<u32> {
    let id = value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from))
        .ok_or_else(|| Error::cue(field(), format!("{value} is not a node id")))?;
    seed_id(id, field)
}

fn parse_activation(value: &Value, field: impl Fn() -> String) -> Result<f32> {
    let a =
        value.as_f64().ok_or_else(|| Error::cue(field(), format!("activation {value} is not a number")))?;
    seed_activation(a, value, field)
}

fn parse_embedding(value: &Value) -> Result<Option<Vec<f32>>> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| match x.as_f64() {
                Some(v) if (v as f32).is_finite() => Ok(v as f32),
                Some(_) => Err(Error::cue(format!("embedding[{i}]"), format!("{x} does not fit in f32"))),
                None => Err(Error::cue(format!("embedding[{i}]"), format!("{x} is not a number"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        other => Err(Error::cue("embedding", format!("expected an array of numbers, got {other}"))),
    }
}

fn parse_k(value: &Value) -> Result<Option<usize>> {
    match value {
        Value::Null => Ok(None),
        _ => match value.as_u64() {
            Some(k) if k >= 1 => Ok(Some(k as usize)),
            _ => Err(Error::cue("k", format!("must be an integer >= 1, got {value}"))),
        },
    }
}
