"""Regenerate ``vocabulary.txt``, the tokens of free text known not to identify anyone.

Usage::

    python anonymizer/deid/data/generate_vocabulary.py

Sources, all of them tables of the DICOM standard or terminology shipped inside installed
packages, none of them holding data about people (see README.md for editions):

- the attribute names of the DICOM data dictionary (``pydicom._dicom_dict``);
- the code meanings of the standard's context groups (``pydicom.sr._concepts_dict``), minus
  the SNOMED concepts about organisms, races and persons, and the alphabetic DCM code values
  (modalities, defined terms) and UCUM units;
- the enumerated values and defined terms of highdicom's enums and its table of anatomic
  regions (CID 4031, Body Part Examined);
- the hand-written lists below: protocol and sequence terms, image processing and
  compression terms, common clinical abbreviations, ordinary words of clinical free text,
  units, English function words.

Eponyms and author names are excluded: a word written in possessive form ("Paget's"), a
capitalised word standing before a year ("Hadlock 1984"), or a capitalised word following a
lower-case word (sentence-case meanings capitalise only proper nouns), unless the same word
also occurs in lower case inside a phrase. On top, :data:`PERSON_NAMES` (common given and
family names) is always excluded. Number-only tokens and single letters (except
:data:`SINGLE_LETTERS`) are never words.
"""

from __future__ import annotations

import enum
import importlib
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

OUTPUT = Path(__file__).with_name("vocabulary.txt")
_WORD = re.compile(r"[A-Za-z0-9]+")
_SKIPPED_SCT_TAGS = ("(organism)", "(racial group)", "(ethnic group)", "(person)", "(geographic location)")
_SKIPPED_WORDS_IN = ("breed", "genus", "species")
_SKIPPED_SCHEMES = ("ITIS_TSN", "NDC", "PUBCHEM_CID", "RXNORM")
_FUNCTION_WORDS = frozenset("a an and as at by for from in of on or per the to with without".split())
_HIGHDICOM_ENUMS = (
    "highdicom.enum",
    "highdicom.ann.enum",
    "highdicom.pm.enum",
    "highdicom.pr.enum",
    "highdicom.sc.enum",
    "highdicom.seg.enum",
    "highdicom.sr.enum",
)

SINGLE_LETTERS = ("l", "r", "c", "t", "s", "w")  # laterality, spine levels, "w" (with)

# MR/CT/US/NM protocol and series terms as they are typed into descriptions.
PROTOCOL_TERMS = """
ax axi axial sag sagittal cor coronal obl oblique tra trans transverse transaxial
t1 t2 t1w t2w t2star t1rho pd pdw flair dir dwi adc trace ewi dti swi swan mprage mp2rage spgr
fspgr bravo lava vibe space cube tse fse frfse ssfse haste blade propeller gre fl2d fl3d epi
bold asl pwi perf perfusion dce dsc stir tirm fs fatsat fat sat water spair spir ideal dixon
opp inphase outphase ip op in out mip minip mpr vr ssd cpr mra mrv mrcp mrs csi svs tof pc
pca cine tagging lge psir ttc scout localizer localiser loc survey topogram surview scanogram
helical spiral axial seq sequential cardiac gated ecg retro prosp calcium score cta ctp ctv
pre post contrast gd gad gado dotarem iv oral w/ w/o wo woc wc non enh enhanced unenh
delayed delay late early arterial venous portal portovenous equilibrium nephrographic
excretory phase bone lung soft tissue mediastinum mediastinal brain stroke window std
standard sharp smooth detail kernel recon reconstruction thin thick slice slices mm
hr hrct lowdose ld uld dual energy de spectral mono monoenergetic kev iodine vnc
head neck chest thorax abdomen abd pelvis pel abdpel cap tap spine cspine tspine lspine
c-spine t-spine l-spine extremity knee shoulder hip ankle wrist elbow hand foot
lt rt left right bilat bilateral both lat ap pa lao rao llat rlat decub supine prone erect
upright standing sitting frontal lateral oblique view views series image images
routine protocol study exam examination screening diagnostic followup follow up fu
baseline repeat repeated rpt redo reformat reformats mpr3d 3d 2d 4d mip3d vol volume
volumetric iso isotropic hi res hires lo lowres fast quick short long multi single
echo te tr ti fa flip nex nsa etl bw fov matrix b0 b50 b100 b500 b800 b1000 b1500 b2000
dose sr report key kos pr gsps rtdose rtplan rtstruct seg reg ko
mammo mammography mg tomo tomosynthesis dbt cc mlo ml lm xccl spot mag magnification
implant displaced id implant-displaced
us doppler color colour power duplex bmode cfm pw cw spectral elastography shear wave
nm spect pet fdg psma dotatate ga68 f18 tc99m ac nac attenuation corrected uncorrected
xa dsa angio angiography fluoro fluoroscopy cath dx cr rf
"""

CLINICAL_ABBREVIATIONS = """
hx h/o hist history dx ddx r/o rule s/p sp status post eval evaluation f/u fu assess
pt pts patient yo y/o yrs yr mo mos wk wks day days hrs min mins sec secs
hct hgb wbc plt cr bun egfr gfr inr psa cea afp ca125
ca cancer tumour tumor mass lesion nodule nodules cyst met mets metastasis metastases
fx fracture trauma mva pain ache abd sob cp ha loc tia cva mi chf copd pe dvt uti
ams ich sah sdh edh icu er ed ct mri mr us cxr kub ivp ivu ercp egd
neg pos positive negative normal abnormal nl wnl nad unremarkable suspected susp
possible poss probable prob vs versus and or with without w/o of for the a an to in on at
by from per no not non none new old prior previous comparison compare cf
mass effect stenosis occlusion aneurysm dissection embolism infarct hemorrhage haemorrhage
bleed edema oedema effusion pneumonia pneumothorax consolidation atelectasis
appendicitis cholecystitis pancreatitis diverticulitis obstruction ileus stone stones
calculus calculi hydronephrosis
"""

# Words of image processing and compression that descriptions carry (DerivationDescription).
PROCESSING_TERMS = """
jpeg jpg jpeg2000 j2k jpip jpegls jls rle deflate mpeg mpeg2 mpeg4 hevc h264 h265 lossless lossy
reversible irreversible compression compressed uncompressed decompressed ratio quality factor
baseline extended progressive ijg scaled resampled resample rescaled cropped converted conversion
derived secondary capture screenshot snapshot processed postprocessed subtracted subtraction
fused fusion registered averaged filtered smoothed sharpened reformatted reconstructed
echocardiogram echocardiography echo tte tee transthoracic transesophageal stress rest
ihe bh breathhold fb nav navigator resp trig triggered dyn dynamic
"""

# Ordinary words of clinical free text that the DICOM sources happen not to contain.
COMMON_WORDS = """
about above after again against also any are as be been before below between but can could
did does done during each every few further had has have having here how if into is it its
just less marked mild moderate more most much must near next now only other over same seen
severe should since so some such than that their then there these they this those through
too under until up very was were what when where which while who will would yes
known referred requested suspected tested approved noted seen shown compared increased
decreased improved unchanged stable worsening resolved persistent interval recommend
recommended correlation clinical clinically finding findings impression indication
man woman male female boy girl child children infant newborn neonate adult adolescent elderly
anonymized anonymised anonymous
"""

UNITS = """
mm cm m um µm nm km ml l cc dl mg g kg ug mcg ng mmol umol mol mg/ml mg/kg
s ms us sec min h hr hrs hz khz mhz t mt gauss kv kvp ma mas mgy gy cgy sv msv usv mbq
bq gbq kbq mci uci ci deg degree degrees % percent hu bpm db cm2 mm2 mm3 cm3 mmhg
mm/s cm/s m/s ml/s ml/min
"""

# Common given and family names (of many origins) that are not ordinary English words:
# excluded even where a source happens to contain them (eponyms, author names).
PERSON_NAMES = """
aaron abbott abraham adams addison albert alexander alice allen alzheimer amy
anderson andrew angela ann anna anne anthony arnold arthur baker barbara barrett baum
bauer becker benjamin bennett betty blackwell boyd brenner brian brooks bruce campbell
carlos carol carter catherine charles chen chitkara chitty christopher cockett cohen
collins cooper crohn cushing daniel david davis daya dennis diana dodd donald
doubilet douglas duke edward edwards elizabeth emily emma eriksen eric evans
ewing fisher fleischner frank fred garcia gary george goldstein graves gregory hadlock
hansmann harris harry helen hellman henry hodgkin hohler howard hughes ivan
jack jackson james jane jason jeanty jeffrey jennifer jessica john johnson jones joseph
joshua juan julia karen katherine kelly kennedy kevin kim kurtz larry laura lee lessoway
lewis linda lisa maria marfan margaret mark martin martinez mary mayden mercer merz
mertz meyer michael michel michelle miller mitchell mondor moore moran morgan morris
morrison muller murphy nancy nelson nguyen nicholas nimrod norgaard nyberg osaka paget
parker parkinson patricia patrick paul peter peterson phillips raymond raynaud rebecca
rempen richard richardson robert roberts robinson rodriguez rogers ronald ross russell
ruth sabbagha samuel sandra sarah scott sharon shepard shinozuka smith stephen stenver
steven stewart susan taylor thomas timothy tokyo thompson towne turner walker waldeyer
walter wang watson william williams wilson yarkoni zenker
"""


def _words(text: str) -> Iterator[str]:
    for token in _WORD.findall(text):
        if not token.isdigit():
            yield token


def dictionary_phrases() -> list[str]:
    """Attribute names of the DICOM data dictionary."""
    from pydicom._dicom_dict import DicomDictionary

    return [entry[2] for entry in DicomDictionary.values()]


def concept_phrases() -> tuple[list[str], list[str]]:
    """Code meanings of the standard's context groups, and alphabetic DCM/UCUM code values."""
    from pydicom.sr._concepts_dict import concepts as loaded

    concepts: dict[str, dict[str, dict[str, tuple[str, list[int]]]]] = dict(loaded)  # type: ignore[arg-type]
    meanings: list[str] = []
    codes: list[str] = []
    for scheme, by_name in concepts.items():
        if scheme in _SKIPPED_SCHEMES:
            continue
        for by_code in by_name.values():
            for code, (meaning, _cids) in by_code.items():
                if meaning.endswith(_SKIPPED_SCT_TAGS) or any(w in meaning.lower() for w in _SKIPPED_WORDS_IN):
                    continue
                meanings.append(meaning)
                if scheme in ("DCM", "UCUM") and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{1,15}", code):
                    codes.append(code)
    return meanings, codes


def highdicom_phrases() -> list[str]:
    """Enumerated values and defined terms of highdicom's enums, and CID 4031 body parts."""
    phrases: list[str] = []
    for name in _HIGHDICOM_ENUMS:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj.__module__ == name:
                phrases.extend(str(e.value).replace("_", " ") for e in obj if isinstance(e.value, str))
    import highdicom

    path = Path(highdicom.__file__).with_name("_standard") / "anatomic_regions.json"
    for key, entry in json.loads(path.read_text(encoding="utf-8")).items():
        phrases.extend((key, str(entry[2])))
    return phrases


def proper_nouns(phrases: Iterable[str]) -> set[str]:
    """Lower-cased words the phrases write as proper nouns (see module docstring)."""
    suspects: set[str] = set()
    common: set[str] = set()
    for phrase in phrases:
        suspects.update(w.lower() for w in re.findall(r"([A-Za-z]+)'s\b", phrase))
        suspects.update(w.lower() for w in re.findall(r"\b([A-Z][a-z]+),? (?:1[89]|20)\d\d\b", phrase))
        words = [w.strip(",.;:()") for w in phrase.split()]
        common.update(w.lower() for w in words[1:] if w[:1].islower())
        if not any(w[:1].islower() and w not in _FUNCTION_WORDS for w in words[1:]):
            continue  # Title Case: capitals say nothing about proper nouns
        suspects.update(w.lower() for w in words[1:] if w[:1].isupper() and w[1:].islower())
    return suspects - common


def build() -> list[str]:
    """The sorted vocabulary."""
    meanings, codes = concept_phrases()
    dictionary = dictionary_phrases()
    phrases = dictionary + meanings + highdicom_phrases()
    hand = " ".join((PROTOCOL_TERMS, PROCESSING_TERMS, CLINICAL_ABBREVIATIONS, COMMON_WORDS, UNITS)).split()
    names = set(PERSON_NAMES.split())
    # Attribute names hold no eponyms: their words are trusted over the heuristic.
    trusted = {w.lower() for phrase in dictionary for w in _words(phrase)}
    excluded = (proper_nouns(phrases) - trusted) | names
    words = {w.lower() for phrase in phrases for w in _words(phrase)} | {c.lower() for c in codes}
    words = {w for w in words if len(w) > 1 and w not in excluded}
    # The hand lists are curated: the proper-noun heuristic does not apply to them.
    words.update(w for w in hand if len(w) > 1 and w not in names and not w.replace(".", "").isdigit())
    words.update(SINGLE_LETTERS)
    return sorted(words)


HEADER = """\
# Free-text vocabulary: tokens known not to identify anyone (GENERATED, do not edit).
# Regenerate with: python anonymizer/deid/data/generate_vocabulary.py
# Sources and editions: anonymizer/deid/data/README.md. One lower-case token a line.
"""


def main(argv: list[str]) -> int:
    output = Path(argv[1]) if len(argv) > 1 else OUTPUT
    words = build()
    output.write_text(HEADER + "\n".join(words) + "\n", encoding="utf-8")
    print(f"wrote {len(words)} tokens to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
