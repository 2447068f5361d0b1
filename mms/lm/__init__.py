"""N-gram language models: building ARPA files (mms.lm.kneser_ney), reading and scoring them (mms.lm.arpa),
lexicons (mms.lm.lexicon) and LM weight tuning (mms.lm.tune). WER/CER scoring is mms.scoring."""
