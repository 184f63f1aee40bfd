//! `_core.EventLog`: the events an advance returned, kept as core events (no Python object
//! per event until one is asked for), with columnar access for numpy/pandas.

use std::borrow::Cow;

/// A text data column: its key and one optional value per event.
type TextColumn = (Cow<'static, str>, Vec<Option<Cow<'static, str>>>);

use itb_core::{Event, EventKind, Severity, Value};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::convert::event_to_py;

#[pyclass(name = "EventLog", module = "itb._core", frozen)]
pub struct PyEventLog {
    events: Vec<Event>,
}

impl PyEventLog {
    pub fn new(events: Vec<Event>) -> Self {
        PyEventLog { events }
    }
}

fn kind_code(kind: EventKind) -> u8 {
    EventKind::ALL.iter().position(|&k| k == kind).unwrap_or(0) as u8
}

fn severity_code(s: Option<Severity>) -> u8 {
    match s {
        None => 0,
        Some(Severity::NonCritical) => 1,
        Some(Severity::Critical) => 2,
    }
}

#[pymethods]
impl PyEventLog {
    fn __len__(&self) -> usize {
        self.events.len()
    }

    /// Event `i` as a raw `(time_ms, kind, severity, data, seq)` tuple (negative indices count
    /// from the end; out of range is an `IndexError`).
    fn get<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyTuple>> {
        let n = self.events.len() as isize;
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "event index out of range",
            ));
        }
        event_to_py(py, &self.events[j as usize])
    }

    /// Every event as a raw tuple (a list).
    fn tuples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .events
            .iter()
            .map(|e| event_to_py(py, e))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// A new log of the events whose kind is one of `kinds` (in order; no Python objects built).
    fn select(&self, kinds: Vec<String>) -> Self {
        let wanted: Vec<EventKind> = EventKind::ALL
            .iter()
            .copied()
            .filter(|k| kinds.iter().any(|n| n == k.name()))
            .collect();
        PyEventLog {
            events: self
                .events
                .iter()
                .filter(|e| wanted.contains(&e.kind))
                .cloned()
                .collect(),
        }
    }

    /// A new log: the events of `start..stop` (clamped, like a slice with step 1).
    fn slice(&self, start: usize, stop: usize) -> Self {
        let stop = stop.min(self.events.len());
        let start = start.min(stop);
        PyEventLog {
            events: self.events[start..stop].to_vec(),
        }
    }

    /// This log followed by `other`.
    fn concat(&self, other: &PyEventLog) -> Self {
        PyEventLog {
            events: self
                .events
                .iter()
                .chain(other.events.iter())
                .cloned()
                .collect(),
        }
    }

    /// Kind names in code order: `kind` columns hold indices into this list.
    #[staticmethod]
    fn kind_names() -> Vec<&'static str> {
        EventKind::ALL.iter().map(|k| k.name()).collect()
    }

    /// Columns: `time_ms` (int64), `seq` (uint64), `kind` (uint8 code, see `kind_names`),
    /// `severity` (uint8: 0 none, 1 non_critical, 2 critical), `ints` (name → (int64 values,
    /// bool present)), `texts` (name → list of str | None).
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let n = self.events.len();
        let mut time = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut severity = Vec::with_capacity(n);
        let mut ints: Vec<(Cow<'static, str>, Vec<i64>, Vec<bool>)> = Vec::new();
        let mut texts: Vec<TextColumn> = Vec::new();
        for (row, e) in self.events.iter().enumerate() {
            time.push(e.time_ms);
            seq.push(e.seq);
            kind.push(kind_code(e.kind));
            severity.push(severity_code(e.severity()));
            for (key, value) in &e.data {
                match value {
                    Value::Int(v) => {
                        let col = match ints.iter().position(|c| &c.0 == key) {
                            Some(i) => i,
                            None => {
                                ints.push((key.clone(), vec![0; n], vec![false; n]));
                                ints.len() - 1
                            }
                        };
                        ints[col].1[row] = *v;
                        ints[col].2[row] = true;
                    }
                    Value::Text(t) => {
                        let col = match texts.iter().position(|c| &c.0 == key) {
                            Some(i) => i,
                            None => {
                                texts.push((key.clone(), vec![None; n]));
                                texts.len() - 1
                            }
                        };
                        texts[col].1[row] = Some(t.clone());
                    }
                }
            }
        }
        let out = PyDict::new(py);
        out.set_item("time_ms", time.into_pyarray(py))?;
        out.set_item("seq", seq.into_pyarray(py))?;
        out.set_item("kind", kind.into_pyarray(py))?;
        out.set_item("severity", severity.into_pyarray(py))?;
        let int_cols = PyDict::new(py);
        for (key, values, present) in ints {
            let values: Bound<'py, PyArray1<i64>> = values.into_pyarray(py);
            let present: Bound<'py, PyArray1<bool>> = present.into_pyarray(py);
            int_cols.set_item(key, (values, present))?;
        }
        out.set_item("ints", int_cols)?;
        let text_cols = PyDict::new(py);
        for (key, values) in texts {
            text_cols.set_item(key, values)?;
        }
        out.set_item("texts", text_cols)?;
        Ok(out)
    }
}
