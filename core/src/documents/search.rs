//! Exact top-k over a namespace's chunks, computed in the function that asks.

use crate::model::DocumentChunk;

/// The `k` chunks most like `query`, best first, by cosine similarity. For lexical vectors each
/// dimension is weighed by its inverse document frequency among `chunks`: shared rare words
/// count for more than shared common ones.
pub fn top_k<'a>(query: &[f32], chunks: &'a [DocumentChunk], k: usize, lexical: bool) -> Vec<(f32, &'a DocumentChunk)> {
    let weights: Vec<f32> = if lexical {
        let total = chunks.len() as f32;
        (0..query.len())
            .map(|d| {
                let containing =
                    chunks.iter().filter(|chunk| chunk.vector.get(d).is_some_and(|v| *v != 0.0)).count() as f32;
                ((1.0 + total) / (1.0 + containing)).ln() + 1.0
            })
            .collect()
    } else {
        vec![1.0; query.len()]
    };
    let weighted = |vector: &[f32]| -> Vec<f32> { vector.iter().zip(&weights).map(|(v, w)| v * w).collect() };
    let norm = |vector: &[f32]| vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    let query = weighted(query);
    let query_norm = norm(&query);
    let mut scored: Vec<(f32, &DocumentChunk)> = chunks
        .iter()
        .filter(|chunk| chunk.vector.len() == query.len())
        .map(|chunk| {
            let vector = weighted(&chunk.vector);
            let denominator = query_norm * norm(&vector);
            let dot: f32 = query.iter().zip(&vector).map(|(a, b)| a * b).sum();
            (if denominator > 0.0 { dot / denominator } else { 0.0 }, chunk)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(k);
    scored
}
