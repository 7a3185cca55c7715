//! Conversion at the binding's edge: Python inputs to core types (NumPy arrays read in place,
//! errors naming the element and its value), Python documents to JSON values, and core's typed
//! reports to Python objects — no JSON text in either direction.

use numpy::{Element, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple,
};
use serde_json::{Map, Number, Value};

use crate::errors::{ConfigError, GraphError, py_err};

/// A query embedding: a 1-D float32 array (read in place) or float64 array, or a sequence of
/// numbers; anything else is a `TypeError` naming `embedding` and what it got.
pub(crate) fn query_embedding(object: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    if let Ok(array) = object.extract::<PyReadonlyArray1<'_, f32>>() {
        return Ok(array.as_array().to_vec());
    }
    if let Ok(array) = object.extract::<PyReadonlyArray1<'_, f64>>() {
        return Ok(array.as_array().iter().map(|&x| x as f32).collect());
    }
    if let Ok(array) = object.cast::<numpy::PyUntypedArray>() {
        return Err(PyTypeError::new_err(format!(
            "embedding: expected a 1-D float array, got shape {:?} of {}",
            array.shape(),
            array.dtype()
        )));
    }
    object.extract::<Vec<f32>>().map_err(|e| {
        PyTypeError::new_err(format!("embedding: expected a 1-D array or sequence of floats ({e})"))
    })
}

/// A 1-D input: a NumPy array of exactly `T` read in place (C-contiguous), or any other sequence
/// converted element by element.
pub(crate) enum Column<'py, T: Element> {
    Array(PyReadonlyArray1<'py, T>),
    Copied(Vec<T>),
}

impl<'py, T: Element + for<'a> FromPyObject<'a, 'py>> Column<'py, T> {
    /// `expected` says what each element must be, for the error naming the first one that is not.
    pub(crate) fn extract(object: &Bound<'py, PyAny>, what: &str, expected: &str) -> PyResult<Self> {
        if let Ok(array) = object.extract::<PyReadonlyArray1<'py, T>>()
            && array.is_c_contiguous()
        {
            return Ok(Column::Array(array));
        }
        match object.extract::<Vec<T>>() {
            Ok(values) if !is_text(object) => Ok(Column::Copied(values)),
            _ => Err(element_error::<T>(object, what, expected)),
        }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            // Checked C-contiguous at extraction, so the slice exists.
            Column::Array(array) => array.as_slice().expect("a C-contiguous array"),
            Column::Copied(values) => values,
        }
    }
}

/// Strings and bytes are sequences, but never of numbers or ids.
pub(crate) fn is_text(object: &Bound<'_, PyAny>) -> bool {
    object.is_instance_of::<PyString>()
        || object.is_instance_of::<PyBytes>()
        || object.is_instance_of::<PyByteArray>()
}

/// `repr(value) (type)` for messages: `'0' (str)`, `4294967296 (int)`.
pub(crate) fn describe(value: &Bound<'_, PyAny>) -> String {
    let repr = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "<unprintable>".into());
    let kind = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    format!("{repr} ({kind})")
}

/// The TypeError for a sequence that does not convert: which element, what it is, what it must be.
fn element_error<'py, T: for<'a> FromPyObject<'a, 'py>>(
    object: &Bound<'py, PyAny>,
    what: &str,
    expected: &str,
) -> PyErr {
    if is_text(object) {
        return PyTypeError::new_err(format!("{what}: expected a sequence, got {}", describe(object)));
    }
    let Ok(items) = object.try_iter() else {
        return PyTypeError::new_err(format!("{what}: expected a sequence, got {}", describe(object)));
    };
    for (i, item) in items.enumerate() {
        match item {
            Ok(item) if item.extract::<T>().is_err() => {
                return PyTypeError::new_err(format!("{what}[{i}]: {} is not {expected}", describe(&item)));
            }
            Ok(_) => {}
            Err(e) => return e,
        }
    }
    PyTypeError::new_err(format!("{what}: expected a sequence of {expected}"))
}

pub(crate) const NODE_ID: &str = "a node id (an integer in 0..4294967295)";

/// Edge weights as `f32`: float32 arrays in place; float64 arrays and Python numbers checked in
/// double precision first, so an error reports the value as passed (core's `weights_from_f64`).
/// Complex numbers are refused (NumPy would silently drop their imaginary part).
pub(crate) fn weights<'py>(object: &Bound<'py, PyAny>) -> PyResult<Column<'py, f32>> {
    if let Ok(array) = object.extract::<PyReadonlyArray1<'py, f32>>()
        && array.is_c_contiguous()
    {
        return Ok(Column::Array(array));
    }
    if let Ok(array) = object.extract::<PyReadonlyArray1<'py, f64>>()
        && let Ok(values) = array.as_slice()
    {
        return axonal_core::graph::weights_from_f64(values, 0).map(Column::Copied).map_err(py_err);
    }
    if let Ok(kind) =
        object.getattr("dtype").and_then(|d| d.getattr("kind")).and_then(|k| k.extract::<String>())
        && kind == "c"
    {
        return Err(PyTypeError::new_err("weight: a complex array is not a weight array (weights are real)"));
    }
    if is_text(object) {
        return Err(PyTypeError::new_err(format!("weight: expected a sequence, got {}", describe(object))));
    }
    let items = object.try_iter().map_err(|_| {
        PyTypeError::new_err(format!("weight: expected a sequence, got {}", describe(object)))
    })?;
    let mut values = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        let value = if item.is_instance_of::<PyComplex>() { None } else { item.extract::<f64>().ok() };
        let Some(value) = value else {
            return Err(PyTypeError::new_err(format!(
                "weight[{i}]: {} is not a real number",
                describe(&item)
            )));
        };
        values.push(value);
    }
    axonal_core::graph::weights_from_f64(&values, 0).map(Column::Copied).map_err(py_err)
}

/// A per-node input (`tiers`, `labels`, `embeddings`) must have one entry per node.
pub(crate) fn check_per_node(what: &str, len: usize, nodes: u32) -> PyResult<()> {
    if len == nodes as usize {
        return Ok(());
    }
    Err(GraphError::new_err(format!(
        "{what}: {len} entries for a graph of {nodes} nodes (give one per node, or None)"
    )))
}

/// A typed core report (snapshot, health report, config, …) as Python dicts and lists.
pub(crate) fn to_py<'py, T: serde::Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|e| PyTypeError::new_err(format!("converting a report: {e}")))
}

/// A Python document (dicts, lists, strings, numbers, booleans, None) as a JSON value, for config
/// patches and chaos settings. NaN and infinities are refused: JSON has no such numbers.
pub(crate) fn to_value(object: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    let bad = |path: &str, why: String| ConfigError::new_err(format!("{what}{path}: {why}"));
    fn walk(object: &Bound<'_, PyAny>, path: &str, bad: &dyn Fn(&str, String) -> PyErr) -> PyResult<Value> {
        if object.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(b) = object.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if object.is_instance_of::<PyInt>() {
            if let Ok(i) = object.extract::<i64>() {
                return Ok(Value::from(i));
            }
            if let Ok(u) = object.extract::<u64>() {
                return Ok(Value::from(u));
            }
            return Err(bad(path, format!("{} does not fit in 64 bits", describe(object))));
        }
        if object.is_instance_of::<PyFloat>() {
            let x: f64 = object.extract()?;
            return Number::from_f64(x)
                .map(Value::Number)
                .ok_or_else(|| bad(path, format!("{x} is not a JSON number (not finite)")));
        }
        if let Ok(s) = object.cast::<PyString>() {
            return Ok(Value::String(s.extract::<String>()?));
        }
        if let Ok(dict) = object.cast::<PyDict>() {
            let mut map = Map::new();
            for (key, value) in dict.iter() {
                let Ok(key) = key.cast::<PyString>().map_err(PyErr::from).and_then(|k| k.extract::<String>())
                else {
                    return Err(bad(path, format!("key {} is not a string", describe(&key))));
                };
                let inner = format!("{path}.{key}");
                map.insert(key, walk(&value, &inner, bad)?);
            }
            return Ok(Value::Object(map));
        }
        if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
            let mut items = Vec::new();
            for (i, item) in object.try_iter()?.enumerate() {
                items.push(walk(&item?, &format!("{path}[{i}]"), bad)?);
            }
            return Ok(Value::Array(items));
        }
        // NumPy scalars and other numbers.
        if let Ok(x) = object.extract::<f64>()
            && !object.is_instance_of::<PyComplex>()
        {
            return Number::from_f64(x)
                .map(Value::Number)
                .ok_or_else(|| bad(path, format!("{x} is not a JSON number (not finite)")));
        }
        Err(bad(path, format!("{} is not JSON-serialisable", describe(object))))
    }
    walk(object, "", &bad)
}

/// Seeds as Python gives them: a list of ids, a dict `{id: activation}`, `(id, activation)` pairs,
/// or a NumPy integer array (read in place, no per-element Python walk). Ids and activations follow
/// core's seed rules (`axonal_core::recall::seed_id`, `seed_activation`); strings and bytes are
/// refused.
pub(crate) fn seeds(seeds: &Bound<'_, PyAny>) -> PyResult<Vec<(u32, f32)>> {
    seeds_at(seeds, "")
}

/// [`seeds`], its errors naming the seeds as `{prefix}seeds` (a batch's `cues[3].`). An exception
/// the host's own objects raise (an iterator, `__index__`) comes through as raised.
fn seeds_at(seeds: &Bound<'_, PyAny>, prefix: &str) -> PyResult<Vec<(u32, f32)>> {
    use axonal_core::recall::{seed_activation, seed_id};
    // The common arrays are read in place and converted in one pass.
    if let Ok(array) = seeds.extract::<PyReadonlyArray1<'_, u32>>() {
        return Ok(array.as_array().iter().map(|&id| (id, 1.0)).collect());
    }
    if let Ok(array) = seeds.extract::<PyReadonlyArray1<'_, i64>>() {
        return array
            .as_array()
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                Ok((seed_id(i128::from(id), || format!("{prefix}seeds[{i}]")).map_err(py_err)?, 1.0))
            })
            .collect();
    }
    if let Some(ids) = integer_array(seeds)? {
        return ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| Ok((seed_id(id, || format!("{prefix}seeds[{i}]")).map_err(py_err)?, 1.0)))
            .collect();
    }
    let id = |value: &Bound<'_, PyAny>, at: &dyn Fn() -> String| -> PyResult<u32> {
        let number = if value.is_instance_of::<PyBool>() { None } else { value.extract::<i128>().ok() };
        let Some(number) = number else {
            return Err(crate::errors::RecallError::new_err(format!(
                "cue {}: {} is not a node id (an int >= 0)",
                at(),
                describe(value)
            )));
        };
        seed_id(number, at).map_err(py_err)
    };
    let activation = |value: &Bound<'_, PyAny>, at: &dyn Fn() -> String| -> PyResult<f32> {
        let Ok(number) = value.extract::<f64>() else {
            return Err(crate::errors::RecallError::new_err(format!(
                "cue {}: activation {} is not a number",
                at(),
                describe(value)
            )));
        };
        let shown = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| number.to_string());
        seed_activation(number, &shown, at).map_err(py_err)
    };
    let entry = |(k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>)| {
        let at = || format!("{prefix}seeds[{}]", k.repr().map(|r| r.to_string()).unwrap_or_default());
        Ok((id(&k, &at)?, activation(&v, &at)?))
    };
    if let Ok(dict) = seeds.cast::<PyDict>() {
        return dict.iter().map(entry).collect();
    }
    // Any other mapping (`MappingProxyType`, a `collections.abc.Mapping`) is `{id: activation}`
    // too: iterating it would yield its keys alone, each at activation 1. (A list or tuple, the
    // common case, skips the ABC check.)
    if !seeds.is_instance_of::<PyList>()
        && !seeds.is_instance_of::<PyTuple>()
        && let Ok(mapping) = seeds.cast::<PyMapping>()
    {
        return mapping.items()?.iter().map(|item| entry(item.extract()?)).collect();
    }
    let refused = || {
        PyTypeError::new_err(format!(
            "{prefix}seeds: expected a list of ids, a dict {{id: activation}} or (id, activation) pairs, got {}",
            describe(seeds)
        ))
    };
    if is_text(seeds) {
        return Err(refused());
    }
    let items = seeds.try_iter().map_err(|_| refused())?;
    let mut out = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        let at = || format!("{prefix}seeds[{i}]");
        if let Ok(pair) = item.cast::<PyTuple>() {
            if pair.len() != 2 {
                return Err(crate::errors::RecallError::new_err(format!(
                    "cue {}: {pair} is not an (id, activation) pair",
                    at()
                )));
            }
            out.push((id(&pair.get_item(0)?, &at)?, activation(&pair.get_item(1)?, &at)?));
        } else {
            out.push((id(&item, &at)?, 1.0));
        }
    }
    Ok(out)
}

/// A 1-D NumPy array of integers, widened to `i128` without a Python-level walk; `None` for
/// anything else.
fn integer_array(object: &Bound<'_, PyAny>) -> PyResult<Option<Vec<i128>>> {
    macro_rules! try_dtype {
        ($($t:ty),*) => {$(
            if let Ok(array) = object.extract::<PyReadonlyArray1<'_, $t>>() {
                return Ok(Some(array.as_array().iter().map(|&x| x as i128).collect()));
            }
        )*};
    }
    try_dtype!(u32, i64, u64, i32, u16, i16, u8, i8);
    // The same integers in the other byte order (`>u4` here): swapped once, then read as above.
    if object.cast::<numpy::PyUntypedArray>().is_ok() {
        let dtype = object.getattr("dtype")?;
        let kind: String = dtype.getattr("kind")?.extract()?;
        if (kind == "i" || kind == "u") && !dtype.getattr("isnative")?.is_truthy()? {
            let native = object.call_method1("astype", (dtype.call_method1("newbyteorder", ("=",))?,))?;
            return integer_array(&native);
        }
    }
    Ok(None)
}

/// A recall's `k` as Python gives it: `None` (the configured `recall.k`) or an integer (an `int`
/// or anything with `__index__`, such as NumPy's; not a bool); errors name `k` and the value.
/// Whether it is ≥ 1 is core's check (`cue k: must be >= 1`).
pub(crate) fn recall_k(k: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(k) = k.filter(|k| !k.is_none()) else { return Ok(None) };
    let is_bool = k.is_instance_of::<PyBool>();
    let value = if is_bool { None } else { k.extract::<i128>().ok() };
    let Some(value) = value else {
        if k.is_instance_of::<PyInt>() && !is_bool {
            return Err(crate::errors::RecallError::new_err(format!(
                "cue k: {} does not fit in 64 bits",
                describe(k)
            )));
        }
        return Err(PyTypeError::new_err(format!("k: expected an int >= 1 or None, got {}", describe(k))));
    };
    usize::try_from(value).map(Some).map_err(|_| {
        let why = if value < 0 { "must be >= 1" } else { "does not fit in 64 bits" };
        crate::errors::RecallError::new_err(format!("cue k: {value} {why}"))
    })
}

/// The cues of a batch as Python gives them (docs/spec.md §19): a tuple of two NumPy integer arrays
/// `(seed_ids, offsets)` in CSR form, or a sequence of seed specs (each as `recall`'s `seeds`).
/// Errors name the cue (`cues[3].seeds[1]: …`) or the array entry at fault.
pub(crate) fn batch_cues(cues: &Bound<'_, PyAny>, k: Option<usize>) -> PyResult<Vec<axonal_core::Cue>> {
    use axonal_core::recall::{batch_from_csr, seed_id};
    if let Ok(pair) = cues.cast::<PyTuple>()
        && pair.len() == 2
        && pair.iter().all(|a| a.cast::<numpy::PyUntypedArray>().is_ok())
    {
        let (ids, offsets) = (pair.get_item(0)?, pair.get_item(1)?);
        let not_integers = |what: &str, array: &Bound<'_, PyAny>| {
            let array =
                array.cast::<numpy::PyUntypedArray>().map(|a| format!("{:?} of {}", a.shape(), a.dtype()));
            PyTypeError::new_err(format!(
                "{what}: expected a 1-D NumPy integer array, got shape {}",
                array.unwrap_or_default()
            ))
        };
        let ids = integer_array(&ids)?.ok_or_else(|| not_integers("seed_ids", &ids))?;
        let offsets = integer_array(&offsets)?.ok_or_else(|| not_integers("offsets", &offsets))?;
        let ids = ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| seed_id(id, || format!("seed_ids[{i}]")))
            .collect::<axonal_core::Result<Vec<u32>>>()
            .map_err(py_err)?;
        let offsets = offsets
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                usize::try_from(o).map_err(|_| {
                    crate::errors::RecallError::new_err(format!(
                        "cue offsets[{i}]: {o} is not an offset (offsets are >= 0)"
                    ))
                })
            })
            .collect::<PyResult<Vec<usize>>>()?;
        return batch_from_csr(&ids, None, &offsets, k).map_err(py_err);
    }
    let expected =
        "cues: expected a list of seed specs or a tuple (seed_ids, offsets) of NumPy integer arrays";
    if is_text(cues) || cues.cast::<PyMapping>().is_ok() {
        return Err(PyTypeError::new_err(format!("{expected}, got {}", describe(cues))));
    }
    let items =
        cues.try_iter().map_err(|_| PyTypeError::new_err(format!("{expected}, got {}", describe(cues))))?;
    let mut out = Vec::new();
    for (i, item) in items.enumerate() {
        let seeds = seeds_at(&item?, &format!("cues[{i}]."))?;
        out.push(axonal_core::Cue { seeds, embedding: None, k });
    }
    Ok(out)
}
