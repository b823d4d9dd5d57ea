//! Text encodings (GSM 03.38, UCS-2, Latin-1), segment counting and splitting.
