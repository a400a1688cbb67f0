package wire

// Temporary stub of the profiles helper's API; deleted before its merge.

type Profile struct {
	ASCIIHelp         bool
	ClassicHistograms bool
	MaxClassicBuckets int
	DropExemplars     bool
}

type ProfileCounts struct{ HelpRewritten, HistogramsConverted, ExemplarsDropped, ClassicSeries int }

func (p Profile) Needed(raw []byte) (bool, error) { return false, nil }

func (wr *WriteRequest) ApplyProfile(p Profile, lim Limits) (ProfileCounts, error) {
	return ProfileCounts{}, nil
}

func ASCIIHelp(s string) (string, bool) { return s, false }

func AppendWriteRequestV2(dst []byte, series []Series, metadata []Metadata) []byte { return dst }
