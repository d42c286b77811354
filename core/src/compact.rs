//! Compact storage for the socket table: short ids kept inline, and the
//! rooms of a socket inline while there are at most two.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Longest id kept inline (Socket.IO and Engine.IO ids are 20 bytes).
const INLINE: usize = 22;

/// A socket or client id: inline when short, so that a connect does not
/// allocate for it. Hashes and compares as its bytes, so maps keyed by `Id`
/// are searched with `&[u8]`.
#[derive(Debug, Clone)]
pub(crate) enum Id {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Id {
    pub fn new(id: &str) -> Id {
        if id.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            Id::Inline {
                len: id.len() as u8,
                bytes,
            }
        } else {
            Id::Heap(id.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Id::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Id::Heap(s) => s.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Id::Inline { .. } => std::str::from_utf8(self.as_bytes()).expect("made from a str"),
            Id::Heap(s) => s,
        }
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Id {}

impl Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Id {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// No room in this slot.
const EMPTY: u32 = u32::MAX;
/// The rooms are in [`Spill`], at the index in the second slot.
const SPILLED: u32 = u32::MAX - 1;

/// The rooms (interned scope ids, all below [`SPILLED`]) of one socket: up
/// to two inline, more in a [`Spill`] list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rooms([u32; 2]);

/// Room lists of the sockets in more than two rooms.
#[derive(Debug, Default)]
pub(crate) struct Spill {
    lists: Vec<Vec<u32>>,
    free: Vec<u32>,
}

impl Rooms {
    pub const NONE: Rooms = Rooms([EMPTY, EMPTY]);

    pub fn as_slice<'a>(&'a self, spill: &'a Spill) -> &'a [u32] {
        match self.0 {
            [SPILLED, i] => &spill.lists[i as usize],
            [EMPTY, _] => &[],
            [_, EMPTY] => &self.0[..1],
            _ => &self.0,
        }
    }

    pub fn contains(&self, room: u32, spill: &Spill) -> bool {
        self.as_slice(spill).contains(&room)
    }

    /// Adds a room the socket is not in.
    pub fn push(&mut self, room: u32, spill: &mut Spill) {
        debug_assert!(room < SPILLED);
        match self.0 {
            [SPILLED, i] => spill.lists[i as usize].push(room),
            [EMPTY, _] => self.0[0] = room,
            [_, EMPTY] => self.0[1] = room,
            [a, b] => {
                let list = vec![a, b, room];
                let i = match spill.free.pop() {
                    Some(i) => {
                        spill.lists[i as usize] = list;
                        i
                    }
                    None => {
                        spill.lists.push(list);
                        (spill.lists.len() - 1) as u32
                    }
                };
                self.0 = [SPILLED, i];
            }
        }
    }

    /// Removes a room; `false` when the socket was not in it.
    pub fn remove(&mut self, room: u32, spill: &mut Spill) -> bool {
        match self.0 {
            [SPILLED, i] => {
                let list = &mut spill.lists[i as usize];
                match list.iter().position(|r| *r == room) {
                    Some(at) => {
                        list.swap_remove(at);
                        true
                    }
                    None => false,
                }
            }
            [a, b] if a == room => {
                self.0 = [b, EMPTY];
                true
            }
            [_, b] if b == room => {
                self.0[1] = EMPTY;
                true
            }
            _ => false,
        }
    }

    /// Gives back the spill list, if any (the socket is gone).
    pub fn free(self, spill: &mut Spill) {
        if let [SPILLED, i] = self.0 {
            spill.lists[i as usize] = Vec::new();
            spill.free.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_text_inline_or_not() {
        for s in ["", "a", &"x".repeat(INLINE), &"y".repeat(INLINE + 1)] {
            let id = Id::new(s);
            assert_eq!(id.as_str(), s);
            assert_eq!(id.as_bytes(), s.as_bytes());
        }
        assert_eq!(std::mem::size_of::<Id>(), 24);
    }

    #[test]
    fn rooms_spill_past_two() {
        let mut spill = Spill::default();
        let mut r = Rooms::NONE;
        for room in 0..5 {
            assert!(!r.contains(room, &spill));
            r.push(room, &mut spill);
            assert!(r.contains(room, &spill));
            assert_eq!(r.as_slice(&spill).len(), room as usize + 1);
        }
        assert!(r.remove(3, &mut spill));
        assert!(!r.remove(3, &mut spill));
        let mut left = r.as_slice(&spill).to_vec();
        left.sort();
        assert_eq!(left, [0, 1, 2, 4]);
        r.free(&mut spill);
        assert_eq!(spill.free, [0]);

        let mut r = Rooms::NONE;
        r.push(7, &mut spill);
        r.push(8, &mut spill);
        assert!(r.remove(7, &mut spill));
        assert_eq!(r.as_slice(&spill), [8]);
        assert!(!r.remove(7, &mut spill));
        assert!(r.remove(8, &mut spill));
        assert!(r.as_slice(&spill).is_empty());
    }
}
