//! Logical Subscriber Links: the LSL model and its wire formats, shared by vG, BRG and tests.
