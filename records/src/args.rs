//! Argument builders.
