//! [`Labels`]: node labels packed in three arrays — a presence bitmap, byte offsets and the UTF-8
//! text — so a graph holds them compactly and a snapshot maps them without parsing.

use super::Array;
use crate::error::Result;
use crate::memory;

/// The labels of a graph's nodes.
#[derive(Debug, Clone)]
pub(crate) struct Labels {
    /// Bit `v` set: node `v` has a label.
    pub(crate) present: Array<u64>,
    /// `node_count + 1` byte offsets into `text`.
    pub(crate) offsets: Array<u64>,
    /// The labels' UTF-8 text, back to back.
    pub(crate) text: Array<u8>,
}

impl Labels {
    /// Pack `labels` (one entry per node).
    pub(crate) fn pack<'a>(count: usize, labels: impl Iterator<Item = Option<&'a str>>) -> Result<Labels> {
        let mut present =
            memory::filled(count.div_ceil(64), 0u64, || format!("the label bitmap of {count} nodes"))?;
        let mut offsets = Vec::new();
        memory::reserve(&mut offsets, count + 1, || format!("the label offsets of {count} nodes"))?;
        offsets.push(0u64);
        let mut text = Vec::new();
        for (v, label) in labels.take(count).enumerate() {
            if let Some(label) = label {
                present[v / 64] |= 1 << (v % 64);
                memory::reserve(&mut text, label.len(), || format!("the label text of {count} nodes"))?;
                text.extend_from_slice(label.as_bytes());
            }
            offsets.push(text.len() as u64);
        }
        while offsets.len() < count + 1 {
            offsets.push(text.len() as u64);
        }
        Ok(Labels { present: present.into(), offsets: offsets.into(), text: text.into() })
    }

    /// The label of node `v`, if it has one. (Text from a snapshot is checked to be UTF-8 when
    /// loaded; should a slice not be, it would read as no label rather than as garbage.)
    #[inline]
    pub(crate) fn get(&self, v: usize) -> Option<&str> {
        let word = *self.present.get(v / 64)?;
        if word & (1 << (v % 64)) == 0 {
            return None;
        }
        let (start, end) = (*self.offsets.get(v)? as usize, *self.offsets.get(v + 1)? as usize);
        std::str::from_utf8(self.text.get(start..end)?).ok()
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.present.bytes() + self.offsets.bytes() + self.text.bytes()
    }
}
