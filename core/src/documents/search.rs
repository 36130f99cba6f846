//! Exact top-k over a namespace's chunks, computed in the function that asks.

use crate::model::DocumentChunk;

/// The `k` chunks most like `query`, best first, by cosine similarity. For lexical vectors each
/// dimension is weighed by its inverse document frequency among `chunks`: shared rare words
/// count for more than shared common ones.
pub fn top_k<'a>(query: &[f32], chunks: &'a [DocumentChunk], k: usize, lexical: bool) -> Vec<(f32, &'a DocumentChunk)> {
    let dimensions = query.len();
    let comparable = || chunks.iter().filter(move |chunk| chunk.vector.len() == dimensions);
    // Each dimension's weight, squared: it multiplies both sides of every product.
    let squared_weights: Vec<f32> = if lexical {
        let mut containing = vec![0u32; dimensions];
        for chunk in comparable() {
            for (count, value) in containing.iter_mut().zip(&chunk.vector) {
                *count += u32::from(*value != 0.0);
            }
        }
        let total = chunks.len() as f32;
        containing.iter().map(|&n| (((1.0 + total) / (1.0 + n as f32)).ln() + 1.0).powi(2)).collect()
    } else {
        vec![1.0; dimensions]
    };
    let weighted_norm =
        |vector: &[f32]| vector.iter().zip(&squared_weights).map(|(v, w)| v * v * w).sum::<f32>().sqrt();
    let query_norm = weighted_norm(query);
    let mut scored: Vec<(f32, &DocumentChunk)> = comparable()
        .map(|chunk| {
            let dot: f32 = query.iter().zip(&chunk.vector).zip(&squared_weights).map(|((q, c), w)| q * c * w).sum();
            let denominator = query_norm * weighted_norm(&chunk.vector);
            (if denominator > 0.0 { dot / denominator } else { 0.0 }, chunk)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(k);
    scored
}
