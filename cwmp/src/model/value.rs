//! Parameter types and values (TR-106 3.2): the [`Syntax`] a parameter declares and the typed
//! [`Value`] it holds, with the checks that turn wire text into a value or a fault.

use std::fmt;

use crate::soap::ValueType;

/// A TR-106 primitive data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseType {
    /// `string`.
    String,
    /// `int` (32-bit signed).
    Int,
    /// `unsignedInt` (32-bit unsigned).
    UnsignedInt,
    /// `long` (64-bit signed).
    Long,
    /// `unsignedLong` (64-bit unsigned).
    UnsignedLong,
    /// `boolean`.
    Boolean,
    /// `dateTime`.
    DateTime,
    /// `base64` (sizes count decoded bytes).
    Base64,
    /// `hexBinary` (sizes count decoded bytes).
    HexBinary,
    /// `decimal`.
    Decimal,
}

impl BaseType {
    /// The `xsi:type` a value of this type is sent with.
    pub fn value_type(self) -> ValueType {
        match self {
            Self::String => ValueType::String,
            Self::Int => ValueType::Int,
            Self::UnsignedInt => ValueType::UnsignedInt,
            Self::Long => ValueType::Long,
            Self::UnsignedLong => ValueType::UnsignedLong,
            Self::Boolean => ValueType::Boolean,
            Self::DateTime => ValueType::DateTime,
            Self::Base64 => ValueType::Base64,
            Self::HexBinary => ValueType::HexBinary,
            Self::Decimal => ValueType::Other("decimal".to_owned()),
        }
    }

    /// The type's name as in TR-106 and the data-model XML (`unsignedInt`).
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::UnsignedInt => "unsignedInt",
            Self::Long => "long",
            Self::UnsignedLong => "unsignedLong",
            Self::Boolean => "boolean",
            Self::DateTime => "dateTime",
            Self::Base64 => "base64",
            Self::HexBinary => "hexBinary",
            Self::Decimal => "decimal",
        }
    }

    /// Maps a TR-106 type name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "int" => Self::Int,
            "unsignedInt" => Self::UnsignedInt,
            "long" => Self::Long,
            "unsignedLong" => Self::UnsignedLong,
            "boolean" => Self::Boolean,
            "dateTime" => Self::DateTime,
            "base64" => Self::Base64,
            "hexBinary" => Self::HexBinary,
            "decimal" => Self::Decimal,
            _ => return None,
        })
    }

    fn is_integer(self) -> bool {
        matches!(
            self,
            Self::Int | Self::UnsignedInt | Self::Long | Self::UnsignedLong
        )
    }

    /// The bounds the type itself imposes on integers.
    fn integer_bounds(self) -> (i128, i128) {
        match self {
            Self::Int => (i32::MIN.into(), i32::MAX.into()),
            Self::UnsignedInt => (0, u32::MAX.into()),
            Self::Long => (i64::MIN.into(), i64::MAX.into()),
            _ => (0, u64::MAX.into()),
        }
    }

    /// Whether an `xsi:type` sent by the ACS may carry a value of this type. Strings carry
    /// anything (many ACSs send every value as `xsd:string`) and integer types carry each
    /// other (the range check decides); otherwise the types must match.
    pub fn accepts(self, sent: &ValueType) -> bool {
        match sent {
            ValueType::String => true,
            ValueType::Int | ValueType::UnsignedInt | ValueType::Long | ValueType::UnsignedLong => {
                self.is_integer() || self == Self::Decimal
            }
            ValueType::Boolean => self == Self::Boolean,
            ValueType::DateTime => self == Self::DateTime,
            ValueType::Base64 => self == Self::Base64,
            ValueType::HexBinary => self == Self::HexBinary,
            ValueType::Other(name) => {
                matches!(name.as_str(), "anySimpleType" | "anyType")
                    || Self::from_name(name) == Some(self)
            }
        }
    }
}

impl fmt::Display for BaseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An inclusive numeric range (TR-106 `range` facet); a value must fall in one of a
/// parameter's ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    /// Smallest allowed value.
    pub min: Option<i128>,
    /// Largest allowed value.
    pub max: Option<i128>,
    /// Allowed values are `min + k * step` (`min` or 0 when unbounded below).
    pub step: Option<i128>,
}

impl Range {
    /// Whether `v` is in this range.
    pub fn contains(&self, v: i128) -> bool {
        if self.min.is_some_and(|min| v < min) || self.max.is_some_and(|max| v > max) {
            return false;
        }
        match self.step {
            Some(step) if step > 0 => (v - self.min.unwrap_or(0)).rem_euclid(step) == 0,
            _ => true,
        }
    }

    /// Whether every value of `self` is also in `other`.
    pub fn within(&self, other: &Range) -> bool {
        let lower = match (self.min, other.min) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a >= b,
        };
        let upper = match (self.max, other.max) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a <= b,
        };
        lower && upper && (other.step.is_none() || self.step == other.step)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.min {
            Some(min) => write!(f, "[{min}..")?,
            None => f.write_str("[..")?,
        }
        match self.max {
            Some(max) => write!(f, "{max}]"),
            None => f.write_str("]"),
        }
    }
}

/// The list facet: the value is a comma-separated list of items of the base type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ListSyntax {
    /// Fewest items.
    pub min_items: Option<u32>,
    /// Most items.
    pub max_items: Option<u32>,
    /// Longest allowed list text, in characters.
    pub max_length: Option<u32>,
}

/// A parameter's type and facets (TR-106 3.2 and the data-model schema's `syntax`).
///
/// ```
/// use cwmp::model::{Syntax, Value};
///
/// let vlan = Syntax::unsigned_int().range(1, 4094);
/// assert_eq!(vlan.parse("100"), Ok(Value::Unsigned(100)));
/// assert!(vlan.parse("4095").is_err());
/// let layers = Syntax::string().list(1024);
/// assert!(layers.parse("Device.Ethernet.Interface.1,Device.Ethernet.Interface.2").is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Syntax {
    /// The primitive type (of each item, for lists).
    pub base: BaseType,
    /// Shortest value (strings: characters; base64/hexBinary: bytes; lists: per item).
    pub min_length: Option<u32>,
    /// Longest value (same units as `min_length`).
    pub max_length: Option<u32>,
    /// Allowed numeric ranges (any one); empty means the whole type.
    pub ranges: Vec<Range>,
    /// Allowed string values; empty means any.
    pub enumeration: Vec<String>,
    /// Present when the value is a comma-separated list.
    pub list: Option<ListSyntax>,
}

impl Syntax {
    /// A type with no facets.
    pub fn of(base: BaseType) -> Self {
        Self {
            base,
            min_length: None,
            max_length: None,
            ranges: Vec::new(),
            enumeration: Vec::new(),
            list: None,
        }
    }

    /// `string` of any length.
    pub fn string() -> Self {
        Self::of(BaseType::String)
    }

    /// `string` of at most `max` characters.
    pub fn string_max(max: u32) -> Self {
        Self::string().max_len(max)
    }

    /// `boolean`.
    pub fn boolean() -> Self {
        Self::of(BaseType::Boolean)
    }

    /// `unsignedInt`.
    pub fn unsigned_int() -> Self {
        Self::of(BaseType::UnsignedInt)
    }

    /// `int`.
    pub fn int() -> Self {
        Self::of(BaseType::Int)
    }

    /// `unsignedLong`.
    pub fn unsigned_long() -> Self {
        Self::of(BaseType::UnsignedLong)
    }

    /// `dateTime`.
    pub fn date_time() -> Self {
        Self::of(BaseType::DateTime)
    }

    /// Sets the maximum length.
    pub fn max_len(mut self, max: u32) -> Self {
        self.max_length = Some(max);
        self
    }

    /// Sets the minimum length.
    pub fn min_len(mut self, min: u32) -> Self {
        self.min_length = Some(min);
        self
    }

    /// Adds an inclusive range `min..=max`.
    pub fn range(mut self, min: i128, max: i128) -> Self {
        self.ranges.push(Range {
            min: Some(min),
            max: Some(max),
            step: None,
        });
        self
    }

    /// Adds a range bounded below only.
    pub fn min(mut self, min: i128) -> Self {
        self.ranges.push(Range {
            min: Some(min),
            max: None,
            step: None,
        });
        self
    }

    /// Sets the allowed string values.
    pub fn enumeration(mut self, values: &[&str]) -> Self {
        self.enumeration = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// Makes this a comma-separated list of at most `max_length` characters.
    pub fn list(mut self, max_length: u32) -> Self {
        self.list = Some(ListSyntax {
            max_length: Some(max_length),
            ..ListSyntax::default()
        });
        self
    }

    /// Makes this a comma-separated list with no length limit.
    pub fn unbounded_list(mut self) -> Self {
        self.list = Some(ListSyntax::default());
        self
    }

    /// The `xsi:type` values of this parameter are sent with (lists are strings).
    pub fn value_type(&self) -> ValueType {
        if self.list.is_some() {
            ValueType::String
        } else {
            self.base.value_type()
        }
    }

    /// The value a parameter holds before anything sets it.
    pub fn zero(&self) -> Value {
        if self.list.is_some() {
            return Value::Text(String::new());
        }
        match self.base {
            BaseType::Boolean => Value::Bool(false),
            BaseType::Int | BaseType::Long => Value::Int(0),
            BaseType::UnsignedInt | BaseType::UnsignedLong => Value::Unsigned(0),
            BaseType::DateTime => Value::Text(crate::time::UNKNOWN_TIME.to_owned()),
            BaseType::Decimal => Value::Text("0".to_owned()),
            BaseType::String | BaseType::Base64 | BaseType::HexBinary => Value::Text(String::new()),
        }
    }

    /// Parses wire text into a value of this syntax, checking every facet.
    pub fn parse(&self, text: &str) -> Result<Value, ValueError> {
        if let Some(list) = &self.list {
            return self.parse_list(list, text);
        }
        let value = self.parse_item(text)?;
        Ok(value)
    }

    /// Checks a typed value against this syntax; text is parsed as from the wire.
    pub fn check(&self, value: Value) -> Result<Value, ValueError> {
        match (value, self.list.is_some(), self.base) {
            (Value::Text(text), ..) => self.parse(&text),
            (v @ Value::Bool(_), false, BaseType::Boolean) => Ok(v),
            (v @ (Value::Int(_) | Value::Unsigned(_)), false, base) if base.is_integer() => {
                let n = v.as_i128().unwrap_or_default();
                self.check_integer(n)
            }
            (v, ..) => Err(ValueError::Type {
                expected: self.base,
                value: v.to_string(),
            }),
        }
    }

    fn parse_list(&self, list: &ListSyntax, text: &str) -> Result<Value, ValueError> {
        let length = text.chars().count();
        if list.max_length.is_some_and(|max| length > max as usize) {
            return Err(ValueError::TooLong {
                max: list.max_length.unwrap_or_default(),
            });
        }
        let items: Vec<&str> = if text.trim().is_empty() {
            Vec::new()
        } else {
            text.split(',').map(str::trim).collect()
        };
        let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
        if list.max_items.is_some_and(|max| count > max)
            || list.min_items.is_some_and(|min| count < min)
        {
            return Err(ValueError::ItemCount { count });
        }
        for item in items {
            self.parse_item(item)?;
        }
        // A list keeps the text the ACS sent, so it reads back exactly as written.
        Ok(Value::Text(text.to_owned()))
    }

    fn parse_item(&self, text: &str) -> Result<Value, ValueError> {
        let type_error = || ValueError::Type {
            expected: self.base,
            value: truncate(text),
        };
        match self.base {
            BaseType::String => {
                self.check_length(text.chars().count())?;
                self.check_enumeration(text)?;
                Ok(Value::Text(text.to_owned()))
            }
            BaseType::Boolean => match text.trim() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(type_error()),
            },
            base if base.is_integer() => {
                let trimmed = text.trim();
                let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(type_error());
                }
                let n: i128 = trimmed.parse().map_err(|_| type_error())?;
                self.check_integer(n)
            }
            BaseType::DateTime => {
                let trimmed = text.trim();
                crate::time::parse(trimmed).ok_or_else(type_error)?;
                Ok(Value::Text(trimmed.to_owned()))
            }
            BaseType::Base64 => {
                let trimmed = text.trim();
                let len = base64_len(trimmed).ok_or_else(type_error)?;
                self.check_length(len)?;
                Ok(Value::Text(trimmed.to_owned()))
            }
            BaseType::HexBinary => {
                let trimmed = text.trim();
                if !trimmed.len().is_multiple_of(2)
                    || !trimmed.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(type_error());
                }
                self.check_length(trimmed.len() / 2)?;
                Ok(Value::Text(trimmed.to_owned()))
            }
            _ => {
                let trimmed = text.trim();
                let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
                let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
                let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                if int.len() + frac.len() == 0 || !digits(int) || !digits(frac) {
                    return Err(type_error());
                }
                Ok(Value::Text(trimmed.to_owned()))
            }
        }
    }

    fn check_integer(&self, n: i128) -> Result<Value, ValueError> {
        let (lo, hi) = self.base.integer_bounds();
        let in_ranges = self.ranges.is_empty() || self.ranges.iter().any(|r| r.contains(n));
        if n < lo || n > hi || !in_ranges {
            return Err(ValueError::OutOfRange { value: n });
        }
        Ok(match self.base {
            BaseType::Int | BaseType::Long => Value::Int(i64::try_from(n).unwrap_or_default()),
            _ => Value::Unsigned(u64::try_from(n).unwrap_or_default()),
        })
    }

    fn check_length(&self, len: usize) -> Result<(), ValueError> {
        if let Some(max) = self.max_length
            && len > max as usize
        {
            return Err(ValueError::TooLong { max });
        }
        if let Some(min) = self.min_length
            && len < min as usize
        {
            return Err(ValueError::TooShort { min });
        }
        Ok(())
    }

    fn check_enumeration(&self, text: &str) -> Result<(), ValueError> {
        if self.enumeration.is_empty() || self.enumeration.iter().any(|e| e == text) {
            Ok(())
        } else {
            Err(ValueError::NotEnumerated {
                value: truncate(text),
            })
        }
    }
}

/// Decoded length of RFC 4648 base64 text (whitespace ignored, padding required to a
/// multiple of four); `None` when malformed.
fn base64_len(text: &str) -> Option<usize> {
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let padding = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return None;
    }
    let body = &bytes[..bytes.len() - padding];
    if !body
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
    {
        return None;
    }
    Some(bytes.len() / 4 * 3 - padding)
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Why a value does not fit a parameter's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The text is not a value of the type (e.g. `abc` for an unsignedInt).
    #[error("{value:?} is not a valid {expected}")]
    Type {
        /// The parameter's type.
        expected: BaseType,
        /// The offending text (cut to 64 characters).
        value: String,
    },
    /// An integer outside the type's or the parameter's ranges.
    #[error("{value} is out of range")]
    OutOfRange {
        /// The value.
        value: i128,
    },
    /// Longer than the maximum length.
    #[error("longer than {max}")]
    TooLong {
        /// The maximum.
        max: u32,
    },
    /// Shorter than the minimum length.
    #[error("shorter than {min}")]
    TooShort {
        /// The minimum.
        min: u32,
    },
    /// Not one of the enumerated values.
    #[error("{value:?} is not one of the allowed values")]
    NotEnumerated {
        /// The offending text (cut to 64 characters).
        value: String,
    },
    /// A list with too many or too few items.
    #[error("a list of {count} items is not allowed")]
    ItemCount {
        /// Items in the list.
        count: u32,
    },
}

/// A parameter value, typed.
///
/// Strings, lists, dateTime, base64, hexBinary and decimal values are [`Value::Text`];
/// the parameter's [`Syntax`] says which.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// Text: string, list, dateTime, base64, hexBinary, decimal.
    Text(String),
    /// `int` or `long`.
    Int(i64),
    /// `unsignedInt` or `unsignedLong`.
    Unsigned(u64),
    /// `boolean`.
    Bool(bool),
}

impl Value {
    /// The text, for text values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, for boolean values.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, for unsigned values (and non-negative signed ones).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Unsigned(n) => Some(*n),
            Self::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The number, for signed values (and unsigned ones that fit).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Unsigned(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    fn as_i128(&self) -> Option<i128> {
        match self {
            Self::Int(n) => Some((*n).into()),
            Self::Unsigned(n) => Some((*n).into()),
            _ => None,
        }
    }

    /// The items of a list value (empty text is the empty list).
    pub fn list_items(&self) -> Vec<&str> {
        match self {
            Self::Text(s) if !s.trim().is_empty() => s.split(',').map(str::trim).collect(),
            _ => Vec::new(),
        }
    }
}

/// The wire text: booleans as `true`/`false`, numbers in decimal, text as is.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Int(n) => write!(f, "{n}"),
            Self::Unsigned(n) => write!(f, "{n}"),
            Self::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Self::Unsigned(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Self::Unsigned(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Self::Int(n.into())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_respect_type_and_ranges() {
        let uint = Syntax::unsigned_int();
        assert_eq!(uint.parse(" 42 "), Ok(Value::Unsigned(42)));
        assert_eq!(uint.parse("+7"), Ok(Value::Unsigned(7)));
        assert_eq!(
            uint.parse("4294967295"),
            Ok(Value::Unsigned(u32::MAX.into()))
        );
        for bad in ["4294967296", "-1", "", "1.5", "0x10", "++1", "1e3", "١"] {
            assert!(uint.parse(bad).is_err(), "{bad:?}");
        }
        let int = Syntax::int().min(-1);
        assert_eq!(int.parse("-1"), Ok(Value::Int(-1)));
        assert!(matches!(
            int.parse("-2"),
            Err(ValueError::OutOfRange { value: -2 })
        ));
        let ulong = Syntax::unsigned_long();
        assert_eq!(
            ulong.parse("18446744073709551615"),
            Ok(Value::Unsigned(u64::MAX))
        );
        let two = Syntax::unsigned_int().range(1, 10).range(100, 200);
        assert!(two.parse("150").is_ok() && two.parse("50").is_err());
        let stepped = Syntax {
            ranges: vec![Range {
                min: Some(0),
                max: Some(10),
                step: Some(5),
            }],
            ..Syntax::unsigned_int()
        };
        assert!(stepped.parse("5").is_ok() && stepped.parse("6").is_err());
    }

    #[test]
    fn strings_lists_and_enumerations() {
        let s = Syntax::string_max(3).min_len(1);
        assert_eq!(s.parse("äöü"), Ok(Value::Text("äöü".into())));
        assert_eq!(s.parse("abcd"), Err(ValueError::TooLong { max: 3 }));
        assert_eq!(s.parse(""), Err(ValueError::TooShort { min: 1 }));
        assert_eq!(
            s.parse(" a "),
            Ok(Value::Text(" a ".into())),
            "strings keep spaces"
        );
        let e = Syntax::string().enumeration(&["802.1D-2004", "802.1Q-2011"]);
        assert!(e.parse("802.1Q-2011").is_ok());
        assert!(matches!(
            e.parse("802.1q-2011"),
            Err(ValueError::NotEnumerated { .. })
        ));
        let list = Syntax::unsigned_int().range(1, 4094).list(16);
        assert_eq!(list.parse(""), Ok(Value::Text(String::new())));
        assert_eq!(list.parse("1, 2,3"), Ok(Value::Text("1, 2,3".into())));
        assert!(list.parse("1,4095").is_err());
        assert!(list.parse("1,,2").is_err());
        assert_eq!(
            list.parse("1,2,3,4,5,6,7,8,9"),
            Err(ValueError::TooLong { max: 16 })
        );
        let mut counted = Syntax::string().unbounded_list();
        counted.list = Some(ListSyntax {
            max_items: Some(2),
            ..ListSyntax::default()
        });
        assert_eq!(
            counted.parse("a,b,c"),
            Err(ValueError::ItemCount { count: 3 })
        );
        assert_eq!(Value::Text("a, b".into()).list_items(), ["a", "b"]);
        assert!(Value::Text(" ".into()).list_items().is_empty());
    }

    #[test]
    fn other_types() {
        let b = Syntax::boolean();
        assert_eq!(b.parse("1"), Ok(Value::Bool(true)));
        assert_eq!(b.parse("false"), Ok(Value::Bool(false)));
        assert!(b.parse("yes").is_err() && b.parse("TRUE").is_err());
        let dt = Syntax::date_time();
        assert!(dt.parse("2024-01-01T00:00:00Z").is_ok());
        assert!(dt.parse("2024-01-01").is_err());
        let b64 = Syntax::of(BaseType::Base64).max_len(3);
        assert!(b64.parse("AAEC").is_ok());
        assert_eq!(b64.parse("AAECAw=="), Err(ValueError::TooLong { max: 3 }));
        for bad in ["AAE", "A===", "AA!C"] {
            assert!(b64.parse(bad).is_err(), "{bad}");
        }
        let hex = Syntax::of(BaseType::HexBinary).max_len(2);
        assert!(hex.parse("0aFF").is_ok());
        assert!(hex.parse("0aF").is_err() && hex.parse("0g").is_err());
        assert!(hex.parse("000000").is_err());
        let dec = Syntax::of(BaseType::Decimal);
        assert!(dec.parse("-1.25").is_ok() && dec.parse("3").is_ok() && dec.parse(".5").is_ok());
        assert!(dec.parse("1.2.3").is_err() && dec.parse("-").is_err());
    }

    #[test]
    fn typed_values_are_checked_and_zeroes_fit() {
        let vlan = Syntax::unsigned_int().range(1, 4094);
        assert_eq!(vlan.check(Value::Unsigned(10)), Ok(Value::Unsigned(10)));
        assert_eq!(vlan.check(Value::Int(10)), Ok(Value::Unsigned(10)));
        assert_eq!(vlan.check("10".into()), Ok(Value::Unsigned(10)));
        assert!(vlan.check(Value::Bool(true)).is_err());
        assert!(vlan.check(Value::Unsigned(0)).is_err());
        assert!(Syntax::boolean().check(Value::Unsigned(1)).is_err());
        assert!(Syntax::string().check(Value::Bool(true)).is_err());
        for base in [
            BaseType::String,
            BaseType::Int,
            BaseType::UnsignedInt,
            BaseType::Long,
            BaseType::UnsignedLong,
            BaseType::Boolean,
            BaseType::DateTime,
            BaseType::Base64,
            BaseType::HexBinary,
            BaseType::Decimal,
        ] {
            let syntax = Syntax::of(base);
            assert_eq!(syntax.check(syntax.zero()), Ok(syntax.zero()), "{base}");
            assert_eq!(BaseType::from_name(base.name()), Some(base));
            assert!(base.accepts(&ValueType::String));
            assert!(base.accepts(&base.value_type()), "{base}");
        }
        assert!(!BaseType::Boolean.accepts(&ValueType::UnsignedInt));
        assert!(BaseType::UnsignedInt.accepts(&ValueType::Int));
        assert!(!BaseType::UnsignedInt.accepts(&ValueType::DateTime));
        assert!(!BaseType::String.accepts(&ValueType::Other("decimal".into())));
    }

    #[test]
    fn display_is_the_wire_form() {
        assert_eq!(Value::Bool(true).to_string(), "true");
        assert_eq!(Value::Int(-5).to_string(), "-5");
        assert_eq!(Value::from(7u32).to_string(), "7");
        assert_eq!(Value::from("x").as_str(), Some("x"));
        assert_eq!(Value::Int(5).as_u64(), Some(5));
        assert_eq!(Value::Int(-5).as_u64(), None);
        assert_eq!(Value::Unsigned(u64::MAX).as_i64(), None);
        assert_eq!(
            Range {
                min: Some(1),
                max: None,
                step: None
            }
            .to_string(),
            "[1..]"
        );
        let narrow = Range {
            min: Some(2),
            max: Some(3),
            step: None,
        };
        let wide = Range {
            min: Some(1),
            max: None,
            step: None,
        };
        assert!(narrow.within(&wide) && !wide.within(&narrow));
    }
}
