//! Turning generated token ids into text as they arrive, in valid UTF-8 pieces.
//!
//! A byte-level token can end in the middle of a character (emoji and CJK often span two or three
//! tokens); its text is held back until the character is complete. Each piece is decoded with a
//! few tokens of context before it, so decoders that drop a word's leading space at the start of
//! a text (SentencePiece) still give the space, and the pieces add up to exactly the final text.

/// Decodes ids to text (the tokenizer's `decode` with the pipeline's options).
pub type Decode<'a> = dyn Fn(&[u32]) -> String + 'a;

#[derive(Debug, Clone)]
pub struct TextStream {
    ids: Vec<u32>,
    /// Where the context of the next piece starts.
    prefix_offset: usize,
    /// Where the text not yet sent starts.
    read_offset: usize,
}

/// How many prompt tokens give the first piece its context.
const CONTEXT: usize = 6;

impl TextStream {
    /// A stream continuing `prompt` (whose text is not sent).
    pub fn new(prompt: &[u32]) -> Self {
        let start = prompt.len().saturating_sub(CONTEXT);
        Self {
            ids: prompt[start..].to_vec(),
            prefix_offset: 0,
            read_offset: prompt.len() - start,
        }
    }

    /// Adds a token; returns the text it completes, if any.
    pub fn push(&mut self, id: u32, decode: &Decode) -> Option<String> {
        self.ids.push(id);
        let before = decode(&self.ids[self.prefix_offset..self.read_offset]);
        let now = decode(&self.ids[self.prefix_offset..]);
        if now.len() <= before.len() || now.ends_with('\u{FFFD}') {
            return None;
        }
        let piece = now.get(before.len()..)?.to_string();
        if !now.starts_with(&before) {
            return None;
        }
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Some(piece)
    }

    /// Whatever is still held back, at the end of generation (an incomplete character stays
    /// as the replacement character, as the final text has it).
    pub fn finish(&mut self, decode: &Decode) -> Option<String> {
        if self.read_offset >= self.ids.len() {
            return None;
        }
        let before = decode(&self.ids[self.prefix_offset..self.read_offset]);
        let now = decode(&self.ids[self.prefix_offset..]);
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        now.get(before.len()..)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-level toy: each id is one byte.
    fn bytes(ids: &[u32]) -> String {
        let raw: Vec<u8> = ids.iter().map(|&i| i as u8).collect();
        String::from_utf8_lossy(&raw).into_owned()
    }

    #[test]
    fn split_characters_are_held_back_and_pieces_add_up() {
        let text = "héllo 🦀 世界!";
        let prompt: Vec<u32> = b"Say: ".iter().map(|&b| b as u32).collect();
        let mut stream = TextStream::new(&prompt);
        let mut out = String::new();
        for b in text.bytes() {
            if let Some(piece) = stream.push(b as u32, &bytes) {
                assert!(!piece.contains('\u{FFFD}'), "{piece:?}");
                out.push_str(&piece);
            }
        }
        if let Some(rest) = stream.finish(&bytes) {
            out.push_str(&rest);
        }
        assert_eq!(out, text);
    }

    #[test]
    fn an_unfinished_character_comes_out_at_the_end() {
        let mut stream = TextStream::new(&[]);
        assert_eq!(stream.push(b'a' as u32, &bytes).as_deref(), Some("a"));
        assert_eq!(stream.push(0xF0, &bytes), None);
        assert_eq!(stream.finish(&bytes).as_deref(), Some("\u{FFFD}"));
    }
}
