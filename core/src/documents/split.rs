//! Splitting text into chunks as OpenGPTs does (LangChain's recursive character splitter with
//! 1,000 characters and 200 of overlap): paragraphs first, then lines, then words, then
//! characters, merged back up to the size with the overlap carried from one chunk to the next.
//! Lengths are in characters.

pub const CHUNK_SIZE: usize = 1000;
pub const CHUNK_OVERLAP: usize = 200;
const SEPARATORS: [&str; 4] = ["\n\n", "\n", " ", ""];

pub fn split_text(text: &str) -> Vec<String> {
    split_with(text, &SEPARATORS, CHUNK_SIZE, CHUNK_OVERLAP)
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn split_with(text: &str, separators: &[&str], size: usize, overlap: usize) -> Vec<String> {
    // The first separator the text contains; the empty one always matches.
    let at = separators
        .iter()
        .position(|separator| separator.is_empty() || text.contains(separator))
        .unwrap_or(separators.len() - 1);
    let (separator, finer) = (separators[at], &separators[at + 1..]);
    let mut chunks = Vec::new();
    let mut fitting: Vec<String> = Vec::new();
    for piece in pieces(text, separator) {
        if chars(&piece) < size {
            fitting.push(piece);
            continue;
        }
        chunks.extend(merge(std::mem::take(&mut fitting), size, overlap));
        if finer.is_empty() {
            chunks.push(piece);
        } else {
            chunks.extend(split_with(&piece, finer, size, overlap));
        }
    }
    chunks.extend(merge(fitting, size, overlap));
    chunks
}

/// The text cut before each separator, which stays with the piece after it (LangChain's
/// `keep_separator`); the empty separator cuts between characters.
fn pieces(text: &str, separator: &str) -> Vec<String> {
    if separator.is_empty() {
        return text.chars().map(String::from).collect();
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(separator).filter(|(at, _)| *at > 0) {
        pieces.push(text[start..at].to_string());
        start = at;
    }
    pieces.push(text[start..].to_string());
    pieces.retain(|piece| !piece.is_empty());
    pieces
}

/// Joins pieces into chunks of at most `size`, each starting with up to `overlap` of the last.
fn merge(pieces: Vec<String>, size: usize, overlap: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut total = 0;
    for piece in pieces {
        let length = chars(&piece);
        if total + length > size && !current.is_empty() {
            push_joined(&mut chunks, &current);
            while total > overlap || (total + length > size && total > 0) {
                let Some(first) = current.pop_front() else { break };
                total -= chars(&first);
            }
        }
        total += length;
        current.push_back(piece);
    }
    push_joined(&mut chunks, &current);
    chunks
}

fn push_joined(chunks: &mut Vec<String>, pieces: &std::collections::VecDeque<String>) {
    let joined: String = pieces.iter().map(String::as_str).collect();
    let trimmed = joined.trim();
    if !trimmed.is_empty() {
        chunks.push(trimmed.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split_text("  The secret code word is PAPAYA-42.\n"), ["The secret code word is PAPAYA-42."]);
        assert!(split_text(" \n ").is_empty());
    }

    #[test]
    fn long_text_splits_on_paragraphs_with_overlap() {
        let paragraph = |n: usize| format!("Paragraph {n}. {}", "word ".repeat(60));
        let text: String = (0..10).map(paragraph).collect::<Vec<_>>().join("\n\n");
        let chunks = split_text(&text);
        assert!(chunks.len() > 2, "{}", chunks.len());
        assert!(chunks.iter().all(|chunk| chars(chunk) <= CHUNK_SIZE), "no chunk is larger than the size");
        assert!(chunks[0].starts_with("Paragraph 0."));
        // Each chunk begins with the end of the one before.
        let tail: String = chunks[0].chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        assert!(chunks[1].contains(tail.trim()), "{tail:?} not in {:?}", &chunks[1][..80]);
        let all: String = chunks.join(" ");
        assert!((0..10).all(|n| all.contains(&format!("Paragraph {n}."))));
    }

    #[test]
    fn a_word_longer_than_a_chunk_is_cut_into_characters() {
        let chunks = split_text(&"x".repeat(2500));
        assert_eq!(chunks.iter().map(|c| chars(c)).collect::<Vec<_>>(), [1000, 1000, 900]);
    }
}
