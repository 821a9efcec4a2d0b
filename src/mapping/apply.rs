//! Applying a mapping to a document: [`apply`] reads the document once with serde_json's parser,
//! without building it, follows the [`Plan`] of what the mapping reads, and writes each metric's
//! samples as soon as the values they need are complete (an element of an `each`, or the
//! document). A value is kept as the slice of JSON text it is written as, and looked at only
//! when a sample needs it, so a value that cannot be used (a lone surrogate in a string, a
//! number out of range) skips only its sample. Memory: the document's text, the values of the
//! current element, and the samples; never a tree of the document.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::plan::{index_text, FrameId, NodeId, Plan, Slots, DOCUMENT};
use super::transform::{self, Parse, Reading};
use super::{Convert, Mapping, Metric, MetricKind, Missing, Read, Source};
use crate::exposition::{self, Family, Kind, Labels};
use crate::log;

/// What applying a mapping to a document gives. Given back to [`apply_into`], its buffers are
/// used again, so that polling the same document again touches no new memory.
#[derive(Debug, Default)]
pub struct Applied {
    /// One family per metric, in mapping order; a family may have no samples.
    pub families: Vec<Family>,
    /// Per metric (same index as the mapping): samples skipped, and why the first one was.
    pub errors: Vec<Skipped>,
    /// Per metric: the label sets its `each` has given.
    seen: Vec<Seen>,
}

impl PartialEq for Applied {
    fn eq(&self, other: &Applied) -> bool {
        self.families == other.families && self.errors == other.errors
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Skipped {
    pub count: u64,
    pub first: Option<String>,
}

impl Skipped {
    fn add(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(reason());
        }
    }
}

/// Why a document gives no metrics at all.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyError {
    /// The document is not JSON: the parser's message.
    InvalidJson(String),
    /// The document gives more series than the limit.
    TooManySeries(usize),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::InvalidJson(e) => f.write_str(e),
            ApplyError::TooManySeries(limit) => write!(
                f,
                "the document gives more than {limit} series (MAX_SERIES): raise MAX_SERIES, or \
                 map fewer values"
            ),
        }
    }
}

/// The key serde_json (with `arbitrary_precision`) passes a number under, as a one-entry map.
/// Object keys are read as bytes, so a document's key can never be taken for it.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Applies `mapping` to the JSON document `document`. Values that cannot be used skip their
/// sample and are counted in `errors`; the document fails as a whole only when it is not JSON
/// or gives more than `max_series` series. Bytes that are not UTF-8 read as U+FFFD.
pub fn apply(mapping: &Mapping, document: &[u8], max_series: usize) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    apply_into(mapping, document, max_series, &mut applied).map(|()| applied)
}

/// [`apply`], into `applied` (what an earlier call gave, or a default), whose buffers it uses
/// again. On an error, what `applied` holds is not to be used.
pub fn apply_into(
    mapping: &Mapping,
    document: &[u8],
    max_series: usize,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    let text = match std::str::from_utf8(document) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(document),
    };
    // The fast way looks inside arrays and objects as it reads; a string it has to look inside
    // that is not valid Unicode (a lone surrogate) stops the parser, so the careful way, which
    // keeps every value's text first, reads such a document again.
    match Run::new(mapping, max_series, false, applied).read(&text, applied) {
        Err(Stop::Json(_)) => Run::new(mapping, max_series, true, applied).read(&text, applied),
        other => other,
    }
    .map_err(|stop| match stop {
        Stop::Json(e) => ApplyError::InvalidJson(e),
        Stop::TooMany => ApplyError::TooManySeries(max_series),
    })
}

enum Stop {
    Json(String),
    TooMany,
}

/// What was found at a place the plan reads.
#[derive(Clone, Debug, Default)]
enum Found<'a> {
    #[default]
    Missing,
    /// A value kept whole: its JSON text as written.
    Text(&'a str),
    /// An array or object looked into, with the number of its elements.
    Array(usize),
    Object(usize),
    /// A value other than an array or object met where the plan looks inside.
    Str(String),
    Number(String),
    Bool(bool),
    Null,
}

/// A found value, as the transforms see it.
enum Json<'s> {
    Missing,
    Null,
    Bool(bool),
    /// The number's text as written.
    Number(&'s str),
    Str(Cow<'s, str>),
    /// A string that is not valid Unicode (a lone surrogate escape).
    BadStr,
    Array,
    Object,
}

impl Found<'_> {
    fn view(&self) -> Json<'_> {
        match self {
            Found::Missing => Json::Missing,
            Found::Null => Json::Null,
            Found::Bool(b) => Json::Bool(*b),
            Found::Number(n) => Json::Number(n),
            Found::Str(s) => Json::Str(Cow::Borrowed(s)),
            Found::Array(_) => Json::Array,
            Found::Object(_) => Json::Object,
            Found::Text(text) => match text.as_bytes().first() {
                Some(b'"') => {
                    let inner = &text[1..text.len() - 1];
                    if !inner.contains('\\') {
                        Json::Str(Cow::Borrowed(inner))
                    } else {
                        match serde_json::from_str::<String>(text) {
                            Ok(s) => Json::Str(Cow::Owned(s)),
                            Err(_) => Json::BadStr,
                        }
                    }
                }
                Some(b'{') => Json::Object,
                Some(b'[') => Json::Array,
                Some(b't') => Json::Bool(true),
                Some(b'f') => Json::Bool(false),
                Some(b'n') => Json::Null,
                _ => Json::Number(text),
            },
        }
    }
}

impl Json<'_> {
    /// The text of a string, number or boolean, as a label or `where` sees it.
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Json::Str(s) => Some(Cow::Borrowed(s)),
            Json::Number(n) => Some(Cow::Borrowed(n)),
            Json::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }

    fn is_absent(&self) -> bool {
        matches!(self, Json::Missing | Json::Null)
    }
}

/// How a found value reads in an error message.
impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Missing => f.write_str("missing"),
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            // As the exposition would write it: the same whether the parser kept its text.
            Json::Number(n) => {
                let mut out = String::new();
                exposition::write_value(n.parse().unwrap_or(f64::NAN), &mut out);
                f.write_str(&out)
            }
            Json::Str(s) => write!(f, "{s:?}"),
            Json::BadStr => f.write_str("a string that is not valid Unicode"),
            Json::Array => f.write_str("an array"),
            Json::Object => f.write_str("an object"),
        }
    }
}

/// The key of the element a frame holds.
#[derive(Clone, Debug, Default)]
enum Key<'a> {
    #[default]
    None,
    Index(usize),
    Name(Cow<'a, [u8]>),
}

/// The values of one element of a frame's container.
#[derive(Debug, Default)]
struct FrameState<'a> {
    slots: Vec<Found<'a>>,
    counters: Vec<u64>,
    key: Key<'a>,
}

/// Label sets already given by the elements of an `each`: a table of their hashes (0 marks a
/// free slot; open addressing, linear probing, at most three quarters full), each with where
/// the first sample with them starts in the family's lines. Sixteen bytes a slot, so that the
/// table of 10,000 label sets (256 KiB) stays in the cache beside the document and the lines.
/// A table of our own: a `HashMap` for this one type added 4 KB to the binary.
#[derive(Debug, Default)]
struct Seen {
    slots: Vec<(u64, usize)>,
    used: usize,
}

impl Seen {
    /// Forgets every label set, keeping the memory.
    fn clear(&mut self) {
        if self.used > 0 {
            self.slots.fill((0, 0));
        }
        self.used = 0;
    }

    /// Whether a label set with hash `hash` for which `given` holds is there; if not, records
    /// the new one (`at`).
    fn check(&mut self, hash: u64, given: impl Fn(usize) -> bool, at: usize) -> bool {
        if (self.used + 1) * 4 > self.slots.len() * 3 {
            let old = std::mem::take(&mut self.slots);
            self.slots = vec![(0, 0); (old.len() * 2).max(64)];
            for entry in old.into_iter().filter(|e| e.0 != 0) {
                let slot = self.free(entry.0);
                self.slots[slot] = entry;
            }
        }
        let hash = hash | 1;
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            match self.slots[slot] {
                (0, _) => {
                    self.slots[slot] = (hash, at);
                    self.used += 1;
                    return false;
                }
                (h, a) if h == hash && given(a) => return true,
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// The first free slot for `hash`.
    fn free(&self, hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        while self.slots[slot].0 != 0 {
            slot = (slot + 1) & mask;
        }
        slot
    }
}

/// A hash of `bytes`, eight at a time, each word mixed in by the splitmix64 finaliser.
fn hash(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut h = bytes.len() as u64;
    for word in &mut words {
        h = crate::rng::mix(h ^ u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
    }
    // Byte by byte: a copy of a length not known here is a call to the C library's memcpy.
    let last = (words.remainder().iter().rev()).fold(0, |last, &b| last << 8 | u64::from(b));
    crate::rng::mix(h ^ last)
}

/// One reading of a document.
struct Run<'a, 'm> {
    mapping: &'m Mapping,
    plan: &'m Plan,
    /// Keep each value's text before looking inside it (see [`apply`]).
    careful: bool,
    frames: Vec<FrameState<'a>>,
    families: Vec<Family>,
    errors: Vec<Skipped>,
    seen: Vec<Seen>,
    /// Each enum's states as label pairs, `state_label="state"`.
    states: Vec<Vec<Labels>>,
    series: usize,
    max_series: usize,
    too_many: bool,
    /// The sets of plan nodes active at each level being read, one after the other.
    active: Vec<NodeId>,
    /// The frames opened by the element being read at each level, one after the other.
    opened: Vec<FrameId>,
    /// Per node: the object (numbered in reading order) in which its key was last seen, so
    /// that a key written twice in one object is read once (the first).
    visited: Vec<usize>,
    objects: usize,
    /// The label pairs of the sample being written.
    labels: Labels,
}

impl<'a, 'm> Run<'a, 'm> {
    /// A reading that writes into the buffers of `reuse`, left empty.
    fn new(
        mapping: &'m Mapping,
        max_series: usize,
        careful: bool,
        reuse: &mut Applied,
    ) -> Run<'a, 'm> {
        let plan = &mapping.plan;
        let frames = plan
            .frames
            .iter()
            .map(|f| FrameState {
                slots: vec![Found::Missing; f.slots],
                counters: vec![0; f.counters],
                key: Key::None,
            })
            .collect();
        let mut families = std::mem::take(&mut reuse.families);
        let mut seen = std::mem::take(&mut reuse.seen);
        let same = families.len() == mapping.metrics.len()
            && families
                .iter()
                .zip(mapping.metrics.iter())
                .all(|(f, m)| f.name == m.name && f.help == m.help);
        if same && seen.len() == families.len() {
            families.iter_mut().for_each(Family::clear);
            for s in &mut seen {
                s.clear();
            }
        } else {
            families = mapping
                .metrics
                .iter()
                .map(|metric| {
                    let kind = match metric.kind {
                        MetricKind::Gauge => Kind::Gauge,
                        MetricKind::Counter => Kind::Counter,
                        MetricKind::Enum { .. } => Kind::StateSet,
                        MetricKind::Info => Kind::Info,
                    };
                    Family::new(&metric.name, &metric.help, kind)
                })
                .collect();
            seen = mapping.metrics.iter().map(|_| Seen::default()).collect();
        }
        let states = mapping
            .metrics
            .iter()
            .map(|metric| match &metric.kind {
                MetricKind::Enum { states, label } => states
                    .iter()
                    .map(|state| Labels::one(label, state))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        Run {
            mapping,
            plan,
            careful,
            frames,
            families,
            errors: vec![Skipped::default(); mapping.metrics.len()],
            seen,
            states,
            series: 0,
            max_series,
            too_many: false,
            active: vec![0],
            opened: Vec::new(),
            visited: vec![0; plan.nodes.len()],
            objects: 0,
            labels: Labels::default(),
        }
    }

    /// Reads the document `text`; what it gives goes into `into`, also when it fails, so that
    /// the buffers are used again.
    fn read(mut self, text: &'a str, into: &mut Applied) -> Result<(), Stop> {
        let result = self.read_all(text);
        into.families = self.families;
        into.errors = self.errors;
        into.seen = self.seen;
        result
    }

    fn read_all(&mut self, text: &'a str) -> Result<(), Stop> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = Seed {
            run: self,
            set: (0, 1),
        }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
        if self.too_many {
            return Err(Stop::TooMany);
        }
        parsed.map_err(|e| Stop::Json(e.to_string()))?;
        for index in 0..self.mapping.metrics.len() {
            let slots = &self.plan.metrics[index];
            if slots.base == DOCUMENT {
                self.emit(index).map_err(|_| Stop::TooMany)?;
            }
            if let Some(slot) = slots.each {
                self.check_container(index, slot);
            }
        }
        Ok(())
    }

    /// Counts an `each` whose container is not an array or object.
    fn check_container(&mut self, index: usize, slot: usize) {
        let metric = &self.mapping.metrics[index];
        let found = self.frames[DOCUMENT].slots[slot].view();
        if matches!(found, Json::Array | Json::Object)
            || (found.is_absent() && metric.missing != Missing::Error)
        {
            return;
        }
        let each = metric.each.as_ref().map_or("", |p| p.text.as_str());
        self.errors[index].add(|| format!("{each}: {found}, not an array or object"));
    }

    /// Keeps what was found at the nodes of `set` that something reads.
    fn keep(&mut self, set: (usize, usize), found: Found<'a>) {
        for &node in &self.active[set.0..set.1] {
            let node = &self.plan.nodes[node];
            if let Some(slot) = node.slot {
                let slot = &mut self.frames[node.frame].slots[slot];
                if matches!(slot, Found::Missing) {
                    *slot = found.clone();
                }
            }
        }
    }

    /// Starts reading an element of a frame's container.
    fn open(&mut self, frame: FrameId, key: Key<'a>) {
        let state = &mut self.frames[frame];
        state.slots.fill(Found::Missing);
        // Most frames count nothing: no call to the C library's memset for none.
        if !state.counters.is_empty() {
            state.counters.fill(0);
        }
        state.key = key;
    }

    /// Ends an element of a frame's container: counts it, writes its samples.
    fn close(&mut self, frame: FrameId) -> Result<(), ()> {
        let plan = self.plan;
        for &index in &plan.frames[frame].counts {
            let slots = &plan.metrics[index];
            if self.filter_holds(index, frame) {
                if let Some(counter) = slots.counter {
                    self.frames[slots.base].counters[counter] += 1;
                }
            }
        }
        for &index in &plan.frames[frame].each {
            self.emit(index)?;
        }
        Ok(())
    }

    fn filter_holds(&self, index: usize, frame: FrameId) -> bool {
        let metric = &self.mapping.metrics[index];
        let slots = &self.plan.metrics[index];
        let state = &self.frames[frame];
        metric
            .filter
            .iter()
            .zip(&slots.filter)
            .all(|((_, condition), &slot)| {
                condition.holds(state.slots[slot].view().text().as_deref())
            })
    }

    /// Where an error of metric `index` is, before its pointer: its `each` element, if any.
    /// Only the first error's message is kept ([`Skipped`]): for the others this is empty, so
    /// that an `each` whose every element is skipped does not build a message for each.
    fn at(&self, index: usize) -> String {
        let metric = &self.mapping.metrics[index];
        let Some(each) = metric
            .each
            .as_ref()
            .filter(|_| self.errors[index].first.is_none())
        else {
            return String::new();
        };
        let key = match &self.frames[self.plan.metrics[index].base].key {
            Key::Index(i) => i.to_string(),
            // The document's text: escaped, as it goes into a log line.
            Key::Name(name) => log::escape(&String::from_utf8_lossy(name))
                .replace('~', "~0")
                .replace('/', "~1"),
            Key::None => String::new(),
        };
        format!("{each}/{key}")
    }

    /// Writes the samples of metric `index` from the values of its frame; Err when that is
    /// more series than allowed.
    fn emit(&mut self, index: usize) -> Result<(), ()> {
        let mapping = self.mapping;
        let metric: &Metric = &mapping.metrics[index];
        let slots = &self.plan.metrics[index];
        if slots.counter.is_none()
            && !metric.filter.is_empty()
            && !self.filter_holds(index, slots.base)
        {
            return Ok(());
        }
        // Labels first: a sample without all of them is not written.
        self.labels.clear();
        let frame = &self.frames[slots.base];
        let mut key_is_index = false;
        let mut digits = [0u8; 20];
        for ((label, source), slot) in metric.labels.iter().zip(&slots.labels) {
            let found = match (source, slot) {
                (Source::Pointer(_), Some(slot)) => frame.slots[*slot].view(),
                _ => {
                    let key = match &frame.key {
                        Key::Index(i) => {
                            key_is_index = true;
                            index_text(*i, &mut digits)
                        }
                        Key::Name(name) => match std::str::from_utf8(name) {
                            Ok(name) => name,
                            Err(_) => {
                                let at = self.at(index);
                                self.errors[index].add(|| {
                                    format!("{at}: label {label:?}: the key is not valid Unicode")
                                });
                                return Ok(());
                            }
                        },
                        Key::None => "",
                    };
                    self.labels.push(label, key);
                    continue;
                }
            };
            match found.text() {
                Some(text) => self.labels.push(label, &text),
                None if found.is_absent() && metric.missing != Missing::Error => return Ok(()),
                None => {
                    let at = self.at(index);
                    let pointer = match source {
                        Source::Pointer(p) => p.text.as_str(),
                        Source::Key => "",
                    };
                    self.errors[index].add(|| {
                        format!("{at}{pointer}: label {label:?}: {found}, not a string or number")
                    });
                    return Ok(());
                }
            }
        }
        let frame = &self.frames[slots.base];
        let value = match value(metric, slots, frame) {
            Ok(Some(value)) => value,
            Ok(None) => return Ok(()),
            Err(reason) => {
                let at = self.at(index);
                self.errors[index].add(|| format!("{at}{reason}"));
                return Ok(());
            }
        };
        let family = &mut self.families[index];
        if metric.each.is_some()
            && !key_is_index
            && repeated(&mut self.seen[index], family, &self.labels)
        {
            let at = self.at(index);
            self.errors[index]
                .add(|| format!("{at}: the same labels as an earlier element; the first is kept"));
            return Ok(());
        }
        let added = match value {
            Value::State(current) => {
                let states = &self.states[index];
                for (i, state) in states.iter().enumerate() {
                    let value = f64::from(u8::from(current == Some(i)));
                    family.push_labelled(&self.labels, Some(state), value);
                }
                let added = states.len();
                if current.is_none() {
                    self.unknown_state(index);
                }
                added
            }
            Value::Number(value) => {
                family.push_labelled(&self.labels, None, value);
                1
            }
        };
        self.series += added;
        if self.series > self.max_series {
            self.too_many = true;
            return Err(());
        }
        Ok(())
    }

    /// Counts an enum whose value is none of its states.
    fn unknown_state(&mut self, index: usize) {
        let metric = &self.mapping.metrics[index];
        let MetricKind::Enum { states, .. } = &metric.kind else {
            return;
        };
        let slots = &self.plan.metrics[index];
        let frame = &self.frames[slots.base];
        let found = slots
            .value
            .map_or(Json::Missing, |slot| frame.slots[slot].view());
        let current = found.text().unwrap_or_default().into_owned();
        let at = self.at(index);
        let path = path_of(metric);
        self.errors[index].add(|| {
            let list = states.join(", ");
            format!("{at}{path}: {current:?} is not one of the states ({list}); all are 0")
        });
    }
}

/// Whether `labels` were given by an earlier element of the same `each` to `family`, whose
/// label sets so far are `seen`; if not, they are now. A sample line of the family is
/// `name{labels}` or `name{labels,state="…"}`, its label pairs the same names in the same
/// order: the stored line has the same set when its pairs start with `labels` and end there.
/// (Values are escaped, so a `"` never ends one early.)
fn repeated(seen: &mut Seen, family: &Family, labels: &Labels) -> bool {
    let labels = labels.as_bytes();
    let lines = family.lines();
    let given = |at: usize| {
        lines.get(at + family.name.len() + 1..).is_some_and(|rest| {
            labels.is_empty()
                || (rest.starts_with(labels) && matches!(rest.get(labels.len()), Some(b',' | b'}')))
        })
    };
    seen.check(hash(labels), given, lines.len())
}

/// The value of `metric` in its base frame: Ok(None) to skip it silently, Err with the reason
/// (after the element's place) to skip and count it.
fn value(metric: &Metric, slots: &Slots, frame: &FrameState) -> Result<Option<Value>, String> {
    {
        let found = slots
            .value
            .map_or(Json::Missing, |slot| frame.slots[slot].view());
        let path = path_of(metric);
        let absent = |what: &str| match metric.missing {
            Missing::Error => Err(format!("{path}: {found}, not {what}")),
            Missing::Skip => Ok(None),
            Missing::Default(value) => Ok(Some(Value::Number(value))),
        };
        let number = match &metric.read {
            Read::One => return Ok(Some(Value::Number(1.0))),
            Read::Exists(_) => {
                return Ok(Some(Value::Number(f64::from(u8::from(!found.is_absent())))))
            }
            Read::Count(_) => {
                let found = slots.value.map(|slot| &frame.slots[slot]);
                let count = match (found, slots.counter) {
                    (Some(Found::Array(_) | Found::Object(_)), Some(counter)) => {
                        frame.counters[counter]
                    }
                    (Some(Found::Array(n) | Found::Object(n)), None) => *n as u64,
                    _ if found.is_none_or(|f| f.view().is_absent()) => {
                        return absent("an array or object")
                    }
                    _ => {
                        let found = found.map_or(Json::Missing, Found::view);
                        return Err(format!("{path}: {found}, not an array or object"));
                    }
                };
                count as f64
            }
            Read::Path(_) if found.is_absent() => {
                let what = match metric.kind {
                    MetricKind::Enum { .. } => "a state",
                    _ => "a number",
                };
                return absent(what);
            }
            Read::Path(_) => {
                if let MetricKind::Enum { states, .. } = &metric.kind {
                    return match found.text() {
                        Some(state) => {
                            Ok(Some(Value::State(states.iter().position(|s| *s == state))))
                        }
                        None => Err(format!("{path}: {found}, not a state")),
                    };
                }
                convert(&metric.convert, &found).map_err(|e| format!("{path}: {e}"))?
            }
        };
        // OpenMetrics: "A Total is a non-NaN and MUST be monotonically non-decreasing over
        // time, starting from 0"; parsers refuse the whole exposition otherwise.
        if metric.kind == MetricKind::Counter && (number.is_nan() || number < 0.0) {
            return Err(format!(
                "{path}: {found} gives {number}: a counter is never negative or NaN"
            ));
        }
        Ok(Some(Value::Number(number)))
    }
}

/// A metric's value, before it is written.
enum Value {
    Number(f64),
    /// An enum's current state: which of its states, if any.
    State(Option<usize>),
}

/// The pointer a metric reads its value at, for messages.
fn path_of(metric: &Metric) -> &str {
    match &metric.read {
        Read::Path(p) | Read::Count(p) | Read::Exists(p) => &p.text,
        Read::One => "",
    }
}

/// The number a value stands for, through the metric's transforms; Err says why there is none.
fn convert(convert: &Convert, found: &Json) -> Result<f64, String> {
    let mapped = |key: &str| {
        convert
            .value_map
            .iter()
            .find(|(k, _)| k == key)
            .map(|&(_, n)| n)
    };
    let factors = [convert.parse.factor(), convert.scale];
    match found {
        Json::Number(text) => Ok(transform::finish(
            Reading::Decimal(Cow::Borrowed(text)),
            &factors,
        )),
        Json::Bool(b) => Ok(match mapped(if *b { "true" } else { "false" }) {
            Some(n) => n,
            None => transform::finish(Reading::Value(f64::from(u8::from(*b))), &factors),
        }),
        Json::Str(s) => {
            if let Some(n) = mapped(s) {
                return Ok(n);
            }
            let text = match &convert.regex {
                Some(pattern) => match capture(&pattern.0, s) {
                    Some(capture) => capture,
                    None => {
                        return Err(format!(
                            "{found} does not match regex {:?}",
                            pattern.0.as_str()
                        ))
                    }
                },
                None => s,
            };
            let read = if convert.units.is_empty() {
                convert.parse.read(text).map(|reading| (reading, None))
            } else {
                transform::with_units(text, &convert.units, convert.parse)
                    .map(|(reading, factor)| (reading, Some(factor)))
            };
            match read {
                Some((reading, unit)) => {
                    Ok(transform::finish(reading, &[unit, factors[0], factors[1]]))
                }
                None => {
                    let what = if !convert.units.is_empty() {
                        let units: Vec<&str> =
                            convert.units.iter().map(|(u, _)| u.as_str()).collect();
                        format!("not a number with one of the units {units:?}")
                    } else {
                        convert.parse.expected().to_string()
                    };
                    let plain = convert.regex.is_none()
                        && convert.units.is_empty()
                        && convert.parse == Parse::Number;
                    let hint = if plain { " (add it to value_map)" } else { "" };
                    let shown = match &convert.regex {
                        Some(_) => format!("{found} (captured {text:?})"),
                        None => found.to_string(),
                    };
                    Err(format!("{shown}, {what}{hint}"))
                }
            }
        }
        other => Err(format!("{other}, not a number")),
    }
}

/// The text of `regex`'s capture group 1 in `text`, when it matches.
fn capture<'t>(regex: &regex_lite::Regex, text: &'t str) -> Option<&'t str> {
    let mut locations = regex.capture_locations();
    regex.captures_read(&mut locations, text)?;
    let (start, end) = locations.get(1)?;
    text.get(start..end)
}

/// Reads one value for the nodes `set` (a range of `Run::active`).
struct Seed<'r, 'a, 'm> {
    run: &'r mut Run<'a, 'm>,
    set: (usize, usize),
}

impl<'a> DeserializeSeed<'a> for Seed<'_, 'a, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<(), D::Error> {
        let plan = self.run.plan;
        let nodes = || {
            self.run.active[self.set.0..self.set.1]
                .iter()
                .map(|&n| &plan.nodes[n])
        };
        let inside = nodes().any(|n| n.looks_inside());
        // A value that is read is kept as written (its text) before looking inside it.
        if inside && !self.run.careful && !nodes().any(|n| n.value) {
            return deserializer.deserialize_any(Inside {
                run: self.run,
                set: self.set,
            });
        }
        let raw: &'a RawValue = Deserialize::deserialize(deserializer)?;
        let text = raw.get();
        if inside && (text.starts_with('{') || text.starts_with('[')) {
            let mut nested = serde_json::Deserializer::from_str(text);
            nested
                .deserialize_any(Inside {
                    run: self.run,
                    set: self.set,
                })
                .map_err(de::Error::custom)
        } else {
            self.run.keep(self.set, Found::Text(text));
            Ok(())
        }
    }
}

/// Looks inside a value for the nodes `set`.
struct Inside<'r, 'a, 'm> {
    run: &'r mut Run<'a, 'm>,
    set: (usize, usize),
}

impl<'a> Inside<'_, 'a, '_> {
    /// Reads one element (key `key`) with `read`, between [`Run::enter`] and [`Run::leave`].
    fn element<E: de::Error>(
        &mut self,
        key: Key<'a>,
        visit: usize,
        read: impl FnOnce(Option<Seed<'_, 'a, '_>>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let mark = self.run.enter(self.set, key, visit);
        let set = (mark.active, self.run.active.len());
        let more = if set.0 == set.1 {
            read(None)?
        } else {
            read(Some(Seed { run: self.run, set }))?
        };
        self.run
            .leave(mark, more)
            .map_err(|()| E::custom("too many series"))?;
        Ok(more)
    }
}

/// Where an element's nodes and frames start on the stacks of [`Run`].
struct Mark {
    active: usize,
    opened: usize,
}

impl<'a> Run<'a, '_> {
    /// Enters element `key` of the value read for the nodes `set`: pushes the nodes it leads to
    /// onto `active`, and opens the frames of the containers whose elements are read. `visit`
    /// numbers the object being read (0 for an array).
    fn enter(&mut self, set: (usize, usize), key: Key<'a>, visit: usize) -> Mark {
        let plan = self.plan;
        let mark = Mark {
            active: self.active.len(),
            opened: self.opened.len(),
        };
        for i in set.0..set.1 {
            let node = &plan.nodes[self.active[i]];
            let child = match &key {
                Key::Index(index) => node.index(*index),
                Key::Name(name) => node.child(name),
                Key::None => None,
            };
            if let Some(child) = child {
                // A key written twice in one object: the first is read.
                if !matches!(key, Key::Name(_)) || self.visited[child] != visit {
                    self.visited[child] = visit;
                    self.active.push(child);
                }
            }
            if let Some((any, frame)) = node.any {
                self.active.push(any);
                self.opened.push(frame);
            }
        }
        for i in mark.opened..self.opened.len() {
            let frame = self.opened[i];
            self.open(frame, key.clone());
        }
        mark
    }

    /// Leaves the element entered at `mark`: if it was there (`present`), closes its frames,
    /// which writes their samples; Err when that is more series than allowed.
    fn leave(&mut self, mark: Mark, present: bool) -> Result<(), ()> {
        let mut result = Ok(());
        if present {
            for i in (mark.opened..self.opened.len()).rev() {
                let frame = self.opened[i];
                result = self.close(frame);
                if result.is_err() {
                    break;
                }
            }
        }
        self.active.truncate(mark.active);
        self.opened.truncate(mark.opened);
        result
    }
}

impl<'a> Visitor<'a> for Inside<'_, 'a, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.run.keep(self.set, Found::Bool(v));
        Ok(())
    }

    // Numbers come as a map under NUMBER_TOKEN (`arbitrary_precision`), never as i64, u64, f64.

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.run.keep(self.set, Found::Str(v.to_string()));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.run.keep(self.set, Found::Null);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'a>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut len = 0;
        loop {
            let more = self.element(Key::Index(len), 0, |seed| match seed {
                Some(seed) => seq.next_element_seed(seed).map(|e| e.is_some()),
                None => seq.next_element::<IgnoredAny>().map(|e| e.is_some()),
            })?;
            if !more {
                break;
            }
            len += 1;
        }
        self.run.keep(self.set, Found::Array(len));
        Ok(())
    }

    fn visit_map<A: MapAccess<'a>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.run.objects += 1;
        let visit = self.run.objects;
        let mut len = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let name = match key {
                ObjectKey::Number => {
                    let number: String = map.next_value()?;
                    self.run.keep(self.set, Found::Number(number));
                    return Ok(());
                }
                ObjectKey::Name(name) => name,
            };
            self.element(Key::Name(name), visit, |seed| {
                match seed {
                    Some(seed) => map.next_value_seed(seed)?,
                    None => map.next_value::<IgnoredAny>().map(|_| ())?,
                }
                Ok(true)
            })?;
            len += 1;
        }
        self.run.keep(self.set, Found::Object(len));
        Ok(())
    }
}

/// An object key: a member's name as bytes (so that a key that is not valid Unicode does not
/// stop the parser), or the key serde_json passes a number under.
enum ObjectKey<'a> {
    Name(Cow<'a, [u8]>),
    Number,
}

struct KeySeed;

impl<'a> DeserializeSeed<'a> for KeySeed {
    type Value = ObjectKey<'a>;

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<ObjectKey<'a>, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl<'a> Visitor<'a> for KeySeed {
    type Value = ObjectKey<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_bytes<E>(self, v: &'a [u8]) -> Result<ObjectKey<'a>, E> {
        Ok(ObjectKey::Name(Cow::Borrowed(v)))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<ObjectKey<'a>, E> {
        Ok(ObjectKey::Name(Cow::Owned(v.to_vec())))
    }

    // Only serde_json's number comes as a string: the document's keys come as bytes.
    fn visit_str<E>(self, v: &str) -> Result<ObjectKey<'a>, E> {
        Ok(if v == NUMBER_TOKEN {
            ObjectKey::Number
        } else {
            ObjectKey::Name(Cow::Owned(v.as_bytes().to_vec()))
        })
    }
}
