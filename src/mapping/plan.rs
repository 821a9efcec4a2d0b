//! What a mapping reads of a document, compiled once when the mapping is loaded: a trie of
//! every JSON Pointer its metrics name ([`Plan`]), in which each node is a place in the
//! document, and the slots that the values found there are kept in while the document is read.
//!
//! Pointers relative to the elements of an `each` (or of a `count` with `where`) hang under
//! the container's `any` node; the elements' values live in that container's [`Frame`], which
//! holds them for one element at a time. So the cost of a mapping is linear in its size, and
//! reading a document keeps only the values of the current element, never the document.

use std::collections::HashMap;

use super::{Metric, Pointer, Read, Source};

/// The nodes made while a plan is built, by `"{parent} {key}"` ([`Plan::new`]).
type Made = HashMap<String, NodeId>;

pub type NodeId = usize;
pub type FrameId = usize;
pub type SlotId = usize;

/// The document's own frame: values read outside of any element.
pub const DOCUMENT: FrameId = 0;

#[derive(Clone, Debug)]
pub struct Plan {
    pub nodes: Vec<Node>,
    pub frames: Vec<Frame>,
    /// Per metric (same index as the mapping), where its values are kept.
    pub metrics: Vec<Slots>,
}

/// A place in the document that some pointer reaches.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// Named children, sorted by key.
    pub children: Vec<(Box<str>, NodeId)>,
    /// Every element of the array or object here, and the frame each of them opens.
    pub any: Option<(NodeId, FrameId)>,
    /// Whose frame the value here is kept in, and where: set when something reads it.
    pub slot: Option<SlotId>,
    /// The value itself is read (`path`, a label, `where`, `exists`), not only what kind of
    /// value it is (an `each` or `count` container): its text must be kept as written.
    pub value: bool,
    pub frame: FrameId,
    /// The number of elements here is needed (`count` without `where`).
    pub counted: bool,
}

impl Node {
    /// Whether reading the value here means looking into it (rather than keeping its text).
    pub fn looks_inside(&self) -> bool {
        !self.children.is_empty() || self.any.is_some() || self.counted
    }

    /// The child named `key` (an object key, or an array index written out).
    pub fn child(&self, key: &[u8]) -> Option<NodeId> {
        if self.children.len() <= 8 {
            // Few children, the usual case: the lengths tell most keys apart.
            return self
                .children
                .iter()
                .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key)
                .map(|&(_, node)| node);
        }
        self.children
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key))
            .ok()
            .map(|i| self.children[i].1)
    }

    /// The child for array index `index`.
    pub fn index(&self, index: usize) -> Option<NodeId> {
        if self.children.is_empty() {
            return None;
        }
        // Written out without leading zeros, as an index token must be ("01" is a key).
        let mut digits = [0u8; 20];
        self.child(index_text(index, &mut digits).as_bytes())
    }
}

/// The values kept for one element at a time of a container (or for the document).
#[derive(Clone, Debug, Default)]
pub struct Frame {
    pub slots: usize,
    /// Counters of `count` with `where` whose base this frame is.
    pub counters: usize,
    /// Metrics with one sample per element of this frame's container (`each`).
    pub each: Vec<usize>,
    /// Metrics that count the elements of this frame's container that match their `where`.
    pub counts: Vec<usize>,
}

/// Where one metric's values are kept.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    /// The frame of its samples: the document's, or its `each` container's.
    pub base: FrameId,
    /// The `each` container, in the document's frame.
    pub each: Option<SlotId>,
    /// The value read (`path`, `count`, `exists`), in `base`.
    pub value: Option<SlotId>,
    /// One per label (None for `@key`), in `base`.
    pub labels: Vec<Option<SlotId>>,
    /// The frame `where` reads in (the counted elements', or the `each` elements').
    pub filter_frame: FrameId,
    /// One per condition of `where`, in `filter_frame`.
    pub filter: Vec<SlotId>,
    /// The counter of a `count` with `where`, in `base`.
    pub counter: Option<usize>,
}

impl Plan {
    pub fn new(metrics: &[Metric]) -> Plan {
        let mut plan = Plan {
            nodes: vec![Node::default()],
            frames: vec![Frame::default()],
            metrics: Vec::with_capacity(metrics.len()),
        };
        // The children made so far, by parent and key: a node's sorted `children` could only
        // grow by insertion in the middle, quadratic in a mapping of many metrics under one
        // object (100,000 took seconds). So they are appended, found here, and sorted once.
        // A `String` key, `"{parent} {key}"`: the type parse.rs already hashes.
        let mut made = HashMap::new();
        for (index, metric) in metrics.iter().enumerate() {
            let slots = plan.add(index, metric, &mut made);
            plan.metrics.push(slots);
        }
        for node in &mut plan.nodes {
            node.children.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        }
        plan
    }

    fn add(&mut self, index: usize, metric: &Metric, made: &mut Made) -> Slots {
        let mut slots = Slots::default();
        let mut base_node = 0;
        if let Some(each) = &metric.each {
            let container = self.at(0, each, made);
            slots.each = Some(self.slot(container, false));
            let (any, frame) = self.any(container);
            self.frames[frame].each.push(index);
            base_node = any;
            slots.base = frame;
        }
        slots.filter_frame = slots.base;
        let mut filter_node = base_node;
        match &metric.read {
            Read::Path(p) | Read::Exists(p) => {
                let node = self.at(base_node, p, made);
                slots.value = Some(self.slot(node, true));
            }
            Read::Count(p) => {
                let node = self.at(base_node, p, made);
                slots.value = Some(self.slot(node, false));
                if metric.filter.is_empty() {
                    self.nodes[node].counted = true;
                } else {
                    let (any, frame) = self.any(node);
                    self.frames[frame].counts.push(index);
                    let counter = &mut self.frames[slots.base].counters;
                    slots.counter = Some(*counter);
                    *counter += 1;
                    slots.filter_frame = frame;
                    filter_node = any;
                }
            }
            Read::One => {}
        }
        for (_, source) in &metric.labels {
            let slot = match source {
                Source::Key => None,
                Source::Pointer(p) => {
                    let node = self.at(base_node, p, made);
                    Some(self.slot(node, true))
                }
            };
            slots.labels.push(slot);
        }
        for (pointer, _) in &metric.filter {
            let node = self.at(filter_node, pointer, made);
            let slot = self.slot(node, true);
            slots.filter.push(slot);
        }
        slots
    }

    /// The node `pointer` leads to from `from`, created if needed (in `from`'s frame).
    fn at(&mut self, from: NodeId, pointer: &Pointer, made: &mut Made) -> NodeId {
        let mut node = from;
        for token in &pointer.tokens {
            let next = self.nodes.len();
            node = *made.entry(format!("{node} {token}")).or_insert_with(|| {
                let frame = self.nodes[node].frame;
                self.nodes.push(Node {
                    frame,
                    ..Node::default()
                });
                self.nodes[node]
                    .children
                    .push((token.as_str().into(), next));
                next
            });
        }
        node
    }

    /// The node of every element of `node`'s value, and the frame its elements open.
    fn any(&mut self, node: NodeId) -> (NodeId, FrameId) {
        if let Some(any) = self.nodes[node].any {
            return any;
        }
        let frame = self.frames.len();
        self.frames.push(Frame::default());
        let any = self.nodes.len();
        self.nodes.push(Node {
            frame,
            ..Node::default()
        });
        self.nodes[node].any = Some((any, frame));
        (any, frame)
    }

    /// The slot of `node`'s value in its frame; `value`: the value itself is read.
    fn slot(&mut self, node: NodeId, value: bool) -> SlotId {
        self.nodes[node].value |= value;
        if let Some(slot) = self.nodes[node].slot {
            return slot;
        }
        let frame = &mut self.frames[self.nodes[node].frame];
        let slot = frame.slots;
        frame.slots += 1;
        self.nodes[node].slot = Some(slot);
        slot
    }
}

/// `index` written out in `digits`.
pub fn index_text(index: usize, digits: &mut [u8; 20]) -> &str {
    let mut at = digits.len();
    let mut n = index;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&digits[at..]).unwrap_or_default()
}
