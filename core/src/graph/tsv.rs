//! TSV loading: `src<TAB>dst<TAB>weight` edge lists and `id<TAB>tier<TAB>label` node files.
//!
//! Node count: with a node file, one more than its largest id (an edge naming a larger id is an error);
//! without one, one more than the largest id an edge names.

use std::path::{Path, PathBuf};

use super::{Graph, GraphBuilder, Tier};
use crate::error::{Error, Result};

pub(super) fn load(edges_path: &Path, nodes_path: Option<&Path>) -> Result<Graph> {
    let nodes = nodes_path.map(read_nodes).transpose()?;
    let listed = nodes.as_ref().map(|nodes| nodes.iter().map(|n| n.id + 1).max().unwrap_or(0));
    let edges_text = read(edges_path)?;
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let mut weight = Vec::new();
    for (number, line) in data_lines(edges_path, &edges_text) {
        let line = line?;
        let mut fields = line.split('\t');
        let (Some(s), Some(d), Some(w), None) = (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            let found = line.split('\t').count();
            return Err(tsv_error(
                edges_path,
                number,
                format!("expected 3 tab-separated fields (src, dst, weight), found {found}"),
            ));
        };
        let s = parse_id(edges_path, number, "src", s)?;
        let d = parse_id(edges_path, number, "dst", d)?;
        let text = w.trim();
        let w: f64 = text
            .parse()
            .map_err(|_| tsv_error(edges_path, number, format!("weight {w:?} is not a number")))?;
        // Checked as written: "1e-50" is reported as 1e-50, not as the 0 it rounds to.
        let w = match super::weights_from_f64(&[w], 0) {
            Ok(w) => w[0],
            Err(_) => {
                let message =
                    format!("weight {text} must be finite and in (0, 1] (and above 0 as a 32-bit float)");
                return Err(tsv_error(edges_path, number, message));
            }
        };
        if let Some(count) = listed
            && let Some(bad) = [s, d].into_iter().find(|&x| x >= count)
        {
            let message = format!("node {bad} out of range: the node file lists ids below {count}");
            return Err(tsv_error(edges_path, number, message));
        }
        src.push(s);
        dst.push(d);
        weight.push(w);
    }
    let node_count = listed.unwrap_or_else(|| src.iter().chain(&dst).map(|&x| x + 1).max().unwrap_or(0));
    let mut builder = GraphBuilder::new(node_count);
    builder.add_edges(&src, &dst, &weight)?;
    for node in nodes.into_iter().flatten() {
        builder.set_tier(node.id, node.tier)?;
        if let Some(label) = node.label {
            builder.set_label(node.id, label)?;
        }
    }
    builder.build()
}

struct NodeLine {
    id: u32,
    tier: Tier,
    label: Option<String>,
}

fn read_nodes(path: &Path) -> Result<Vec<NodeLine>> {
    let text = read(path)?;
    let mut nodes: Vec<NodeLine> = Vec::new();
    let mut first_line = std::collections::HashMap::new();
    for (number, line) in data_lines(path, &text) {
        let line = line?;
        let mut fields = line.splitn(3, '\t');
        let id = parse_id(path, number, "id", fields.next().unwrap_or(""))?;
        let tier_text = fields.next().map(str::trim).unwrap_or("");
        let tier = if tier_text.is_empty() {
            Tier::Hot
        } else {
            Tier::parse(tier_text).ok_or_else(|| {
                tsv_error(path, number, format!("tier {tier_text:?} is not hot|warm|cold or 0|1|2"))
            })?
        };
        let label = fields.next().filter(|l| !l.is_empty()).map(str::to_owned);
        if let Some(first) = first_line.insert(id, number) {
            return Err(tsv_error(
                path,
                number,
                format!("node {id} is listed twice (first on line {first})"),
            ));
        }
        nodes.push(NodeLine { id, tier, label });
    }
    Ok(nodes)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), message: e.to_string() })
}

/// Non-empty, non-comment lines with their 1-based numbers; a non-UTF-8 line is an error.
fn data_lines<'a>(path: &'a Path, text: &'a [u8]) -> impl Iterator<Item = (usize, Result<&'a str>)> + 'a {
    text.split(|&b| b == b'\n').enumerate().filter_map(move |(i, raw)| {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let number = i + 1;
        match std::str::from_utf8(raw) {
            Err(e) => Some((
                number,
                Err(tsv_error(path, number, format!("not valid UTF-8 (byte {})", e.valid_up_to()))),
            )),
            Ok(line) if line.trim().is_empty() || line.trim_start().starts_with('#') => None,
            Ok(line) => Some((number, Ok(line))),
        }
    })
}

fn parse_id(path: &Path, line: usize, field: &str, text: &str) -> Result<u32> {
    match text.trim().parse::<u32>() {
        Ok(id) if id < u32::MAX => Ok(id),
        _ => {
            Err(tsv_error(path, line, format!("{field} {text:?} is not a node id (0 ..= {})", u32::MAX - 1)))
        }
    }
}

fn tsv_error(path: &Path, line: usize, message: String) -> Error {
    Error::Tsv { path: PathBuf::from(path), line, message }
}
