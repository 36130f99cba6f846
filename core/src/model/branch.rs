//! The branches a thread's history has left behind. A run from an earlier checkpoint (the
//! LangGraph API's fork: agent-chat-ui's "regenerate" and "edit") makes a new branch the
//! thread; the messages it replaces are kept here, so the history still shows them and a client
//! can go back to them.
//!
//! Messages are never copied between branches, only moved: each message is either in the thread
//! or in one archived branch, and a branch names the message it follows by id. The path from the
//! thread's start to any message is so found whatever forks came after.

use serde::{Deserialize, Serialize};

use super::Message;

/// Archived branches, all together, are kept to this many bytes of JSON (older ones are dropped
/// first): one DynamoDB item holds them, and a fork should not make a thread heavy to read.
pub const ARCHIVE_BYTES: usize = 256 * 1024;

/// Messages that followed `after` (the id of a message; `None`: the thread's start) until a fork
/// took the thread elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub after: Option<String>,
    pub messages: Vec<Message>,
}

/// A thread's archived branches, the most recently left first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Archive(pub Vec<Branch>);

/// What a fork writes: the thread keeps its first `keep` messages, `tail` follows them, and
/// `archive` replaces the archived branches.
#[derive(Debug, Clone, PartialEq)]
pub struct Forked {
    pub keep: usize,
    pub tail: Vec<Message>,
    pub archive: Archive,
}

fn id_of(message: &Message) -> Option<&str> {
    message.id.as_deref()
}

impl Archive {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The messages from the thread's start through the one with `id`, wherever it is; `None`
    /// when it is in neither the thread nor the archive (or its branch's start was dropped).
    pub fn path_to(&self, thread: &[Message], id: &str) -> Option<Vec<Message>> {
        self.path_within(thread, id, self.0.len())
    }

    /// `path_to` with at most `depth` branches to climb: a branch names the message it follows,
    /// and a malformed archive that names a loop must not recurse forever.
    fn path_within(&self, thread: &[Message], id: &str, depth: usize) -> Option<Vec<Message>> {
        if let Some(position) = thread.iter().position(|message| id_of(message) == Some(id)) {
            return Some(thread[..=position].to_vec());
        }
        let depth = depth.checked_sub(1)?;
        self.0.iter().find_map(|branch| {
            let position = branch.messages.iter().position(|message| id_of(message) == Some(id))?;
            let mut path = match &branch.after {
                Some(after) => self.path_within(thread, after, depth)?,
                None => Vec::new(),
            };
            path.extend_from_slice(&branch.messages[..=position]);
            Some(path)
        })
    }

    /// Every archived state, as the messages from the thread's start through its last one: the
    /// most recently left branch first, and within a branch the latest state first (the order of
    /// a history). States whose branch lost its start are left out.
    pub fn states(&self, thread: &[Message]) -> Vec<Vec<Message>> {
        let mut states = Vec::new();
        for branch in &self.0 {
            let start = match &branch.after {
                Some(after) => match self.path_to(thread, after) {
                    Some(path) => path,
                    None => continue,
                },
                None => Vec::new(),
            };
            for upto in (1..=branch.messages.len()).rev() {
                let mut state = start.clone();
                state.extend_from_slice(&branch.messages[..upto]);
                states.push(state);
            }
        }
        states
    }

    /// How many messages the branch nearest the thread's start shares with it: the history lists
    /// the thread's states after that point before the archived ones, and those up to it after.
    pub fn shallowest_fork(&self, thread: &[Message]) -> usize {
        let depth = |branch: &Branch| match &branch.after {
            Some(after) => self.path_to(thread, after).map_or(usize::MAX, |path| path.len()),
            None => 0,
        };
        self.0.iter().map(depth).min().unwrap_or(usize::MAX)
    }

    /// Takes the thread to `target` (a path as `path_to` gives it, or a prefix of the thread):
    /// what the thread and `target` share stays, the rest of the thread becomes the newest
    /// archived branch, and what `target` takes from archived branches leaves them.
    pub fn fork(&self, thread: &[Message], target: &[Message]) -> Forked {
        let keep = thread.iter().zip(target).take_while(|(a, b)| id_of(a) == id_of(b) && a.id.is_some()).count();
        let moved: Vec<&str> = target[keep..].iter().filter_map(id_of).collect();
        let mut branches = Vec::with_capacity(self.0.len() + 1);
        if keep < thread.len() {
            let after = keep.checked_sub(1).and_then(|last| thread[last].id.clone());
            branches.push(Branch { after, messages: thread[keep..].to_vec() });
        }
        for branch in &self.0 {
            // A path enters a branch at its start: what it takes is a leading run of it.
            let taken = branch.messages.iter().take_while(|m| id_of(m).is_some_and(|id| moved.contains(&id))).count();
            if taken < branch.messages.len() {
                let after = match taken {
                    0 => branch.after.clone(),
                    taken => branch.messages[taken - 1].id.clone(),
                };
                branches.push(Branch { after, messages: branch.messages[taken..].to_vec() });
            }
        }
        let mut archive = Archive(branches);
        archive.fit(ARCHIVE_BYTES);
        Forked { keep, tail: target[keep..].to_vec(), archive }
    }

    /// Keeps the newest branches whose JSON fits in `bytes` together; one too large for the
    /// room left is dropped, not the older ones that still fit.
    fn fit(&mut self, bytes: usize) {
        let mut used: usize = 2;
        self.0.retain(|branch| {
            let size = serde_json::to_vec(branch).map_or(usize::MAX, |json| json.len()).saturating_add(1);
            let fits = used.saturating_add(size) <= bytes;
            if fits {
                used += size;
            }
            fits
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Content, MessageType};

    fn message(id: &str) -> Message {
        let kind = if id.starts_with('h') { MessageType::Human } else { MessageType::Ai };
        let mut message = Message::new(kind, id);
        message.id = Some(id.to_string());
        message
    }

    fn messages(ids: &[&str]) -> Vec<Message> {
        ids.iter().map(|id| message(id)).collect()
    }

    fn ids(messages: &[Message]) -> Vec<String> {
        messages.iter().map(|m| m.id.clone().unwrap()).collect()
    }

    #[test]
    fn regenerating_keeps_the_old_answer_as_a_branch() {
        let thread = messages(&["h1", "a1", "h2", "a2"]);
        let forked = Archive::default().fork(&thread, &thread[..3]);
        assert_eq!((forked.keep, forked.tail.len()), (3, 0));
        assert_eq!(forked.archive, Archive(vec![Branch { after: Some("h2".into()), messages: messages(&["a2"]) }]));
        // The new answer follows; the old one is still reachable, and listed as a state.
        let thread = messages(&["h1", "a1", "h2", "a2b"]);
        assert_eq!(ids(&forked.archive.path_to(&thread, "a2").unwrap()), ["h1", "a1", "h2", "a2"]);
        let states: Vec<Vec<String>> = forked.archive.states(&thread).iter().map(|s| ids(s)).collect();
        assert_eq!(states, [vec!["h1", "a1", "h2", "a2"]]);
        assert_eq!(forked.archive.shallowest_fork(&thread), 3);
    }

    #[test]
    fn going_back_to_an_archived_branch_archives_the_one_left() {
        let archive = Archive(vec![Branch { after: Some("h2".into()), messages: messages(&["a2", "h3", "a3"]) }]);
        let thread = messages(&["h1", "a1", "h2", "a2b"]);
        let target = archive.path_to(&thread, "h3").unwrap();
        let forked = archive.fork(&thread, &target);
        assert_eq!(forked.keep, 3);
        assert_eq!(ids(&forked.tail), ["a2", "h3"]);
        assert_eq!(
            forked.archive,
            Archive(vec![
                Branch { after: Some("h2".into()), messages: messages(&["a2b"]) },
                Branch { after: Some("h3".into()), messages: messages(&["a3"]) },
            ])
        );
        let thread = messages(&["h1", "a1", "h2", "a2", "h3"]);
        let states: Vec<Vec<String>> = forked.archive.states(&thread).iter().map(|s| ids(s)).collect();
        assert_eq!(states, [vec!["h1", "a1", "h2", "a2b"], vec!["h1", "a1", "h2", "a2", "h3", "a3"]]);
    }

    #[test]
    fn a_fork_before_an_older_fork_keeps_that_branch_reachable() {
        let archive = Archive(vec![Branch { after: Some("h2".into()), messages: messages(&["a2"]) }]);
        let thread = messages(&["h1", "a1", "h2", "a2b"]);
        // Editing the first message: everything moves to the archive, the old branch included.
        let forked = archive.fork(&thread, &[]);
        assert_eq!(forked.keep, 0);
        let thread = messages(&["h1b", "a1b"]);
        assert_eq!(ids(&forked.archive.path_to(&thread, "a2").unwrap()), ["h1", "a1", "h2", "a2"]);
        assert_eq!(forked.archive.shallowest_fork(&thread), 0);
    }

    #[test]
    fn the_oldest_branches_go_first_when_the_archive_is_full() {
        let big = |id: &str| {
            let mut message = message(id);
            message.content = Content::Text("x".repeat(ARCHIVE_BYTES / 3));
            message
        };
        let mut thread = messages(&["h1"]);
        let mut archive = Archive::default();
        for answer in ["a1", "a2", "a3", "a4"] {
            thread.push(big(answer));
            archive = archive.fork(&thread, &thread[..1]).archive;
            thread.truncate(1);
        }
        let kept: Vec<String> = archive.0.iter().map(|branch| ids(&branch.messages).remove(0)).collect();
        assert_eq!(kept, ["a4", "a3"]);
        // One too large on its own is dropped, and the others stay.
        let mut huge = big("a5");
        huge.content = Content::Text("x".repeat(ARCHIVE_BYTES));
        thread.push(huge);
        let archive = archive.fork(&thread, &thread[..1]).archive;
        let kept: Vec<String> = archive.0.iter().map(|branch| ids(&branch.messages).remove(0)).collect();
        assert_eq!(kept, ["a4", "a3"]);
    }

    #[test]
    fn a_loop_in_a_malformed_archive_finds_no_path() {
        let archive = Archive(vec![
            Branch { after: Some("b".into()), messages: messages(&["a"]) },
            Branch { after: Some("a".into()), messages: messages(&["b"]) },
        ]);
        assert_eq!(archive.path_to(&[], "a"), None);
        assert!(archive.states(&[]).is_empty());
    }
}
