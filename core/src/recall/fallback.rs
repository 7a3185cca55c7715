//! The similarity fallback (docs/spec.md §4): the cheap answer when the breaker refuses a call or a
//! spread fails — the top-`k` nodes by cosine similarity to the query embedding, or, without one,
//! the seeds and their direct out-neighbours.

use super::{Activation, Buffers, Cue};
use crate::graph::View;
use crate::similarity::{self, Search};
use crate::spread;

/// Write the fallback answer for `cue` to `out`, best first, from the resolved seeds (see
/// `seeds::resolved`); every buffer is clean afterwards.
pub(crate) fn answer(
    graph: View<'_>,
    search: Search<'_>,
    cue: &Cue,
    k: usize,
    buffers: &mut Buffers,
    out: &mut Vec<Activation>,
) {
    out.clear();
    if let Some(query) = &cue.embedding
        && let Ok(norm) = similarity::query_norm(graph, query)
    {
        let Buffers { similar, candidates, .. } = buffers;
        search.top(graph, query, norm, k, f32::MIN, candidates, similar);
        out.extend(buffers.similar.iter().map(|&(node, s)| Activation {
            node,
            activation: s,
            hops: 0,
            tier: graph.tiers()[node as usize],
        }));
        return;
    }
    let Buffers { spread, seeds, seeds_in_cue, .. } = buffers;
    spread::one_hop(graph, super::seeds::resolved(cue, seeds, *seeds_in_cue), k, spread, out);
}
