"""The bad-input table of docs/bad-input.md, row by row: each input gets its one-line message,
and the trials stored before it stay intact. ``…`` in a message stands for text that varies (a
list that grows, a driver's wording)."""

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import distributed
import numpy as np
import optuna
import pytest
import torch
from PIL import Image
from test_benchmark import TINY
from test_data import png, png_claiming
from test_search import BATCH, Widths, settings
from test_storage import foreign
from torch import nn
from typer.testing import CliRunner

import search_spaces
from ntknas import cli
from ntknas.cli.common import StopRequest
from ntknas.run import verify
from ntknas.run.search import objective_of, search
from ntknas.study.storage import default_url, mask, redact
from ntknas.study.studies import open_study

TABLE = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
runner = CliRunner()


class Row(NamedTuple):
    kind: str
    example: str
    message: str
    outcome: str = "exit 2"


STORED = "stored as the failed trial's reason; the search goes on"
UNTOUCHED = "exit 2; the file is left byte for byte as it was"
ROWS = [
    Row(
        "a value of the wrong type",
        "ntknas search --trials abc",
        "Invalid value for '--trials': …; see 'ntknas search --help'",
    ),
    Row(
        "an unknown option or command",
        "ntknas search --trails 5",
        "No such option: --trails…; see 'ntknas search --help'",
    ),
    Row(
        "unknown search space",
        "ntknas search --space darts",
        "unknown search space 'darts'; known spaces: nb201, nbmacro, resnet, or package.module:Class",
    ),
    Row(
        "unknown sampler",
        "ntknas search --sampler cmaes",
        "unknown --sampler 'cmaes'; choose one of: tpe, random, nsga2",
    ),
    Row(
        "unknown objective",
        "ntknas search --objective accuracy",
        "unknown --objective 'accuracy'; choose one of: condition_number, lambda_max, …",
    ),
    Row(
        "unknown BatchNorm mode",
        "ntknas search --bn frozen",
        "unknown --bn 'frozen'; choose one of: eval, batch, train",
    ),
    Row(
        "unknown device",
        "ntknas search --device tpu",
        "unknown --device 'tpu'; use auto, cpu, cuda or cuda:K",
    ),
    Row(
        "CUDA without a GPU",
        "ntknas search --device cuda",
        "--device cuda asked for, but no CUDA device is available; use --device cpu",
    ),
    Row("no trials", "ntknas search --trials 0", "--trials must be at least 1; got 0"),
    Row("negative count", "ntknas search --trials -3", "--trials must be at least 1; got -3"),
    Row("no workers", "ntknas search --workers 0", "--workers must be at least 1; got 0"),
    Row("N < 2", "ntknas search --batch-size 1", "--batch-size must be at least 2 to form a kernel; got 1"),
    Row(
        "negative batch size",
        "ntknas search --batch-size -4",
        "--batch-size must be at least 2 to form a kernel; got -4",
    ),
    Row(
        "malformed arch string",
        "ntknas score --space nb201 --arch nor_conv_3x3",
        "malformed nb201 arch string: expected 3 nodes joined by '+', got 1 (e.g. "
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|)",
    ),
    Row(
        "unknown op in an arch string",
        "ntknas score --space nb201 --arch '|nor_conv_3x3~0|+|skip~0|none~1|+|none~0|none~1|none~2|'",
        "unknown op 'skip' on edge 0→2 of the nb201 arch string; "
        "ops: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3",
    ),
    Row(
        "nothing to score",
        "ntknas score --space nb201",
        "give either --space with --arch, or --model",
    ),
    Row(
        "unknown torchvision model",
        "ntknas score --model resnet1000",
        "unknown torchvision model 'resnet1000'; try one of: resnet101, …",
    ),
    Row(
        "model that needs larger images",
        "ntknas score --model alexnet",
        "torchvision model 'alexnet' cannot run on 32×32 images (it needs larger ones: it runs on 64×64); "
        "pass --image-size 64 or choose a model that accepts 32×32, e.g. resnet18",
    ),
    Row(
        "image size not a whole number",
        "ntknas search --image-size 4.5",
        "--image-size must be a whole number of pixels; got '4.5'",
    ),
    Row(
        "image size out of range",
        "ntknas score --model resnet18 --image-size 10000000",
        "--image-size must be from 1 to 1024 pixels; got 10000000: pass the side of the square images to "
        "score and train at, e.g. 32 or 224",
    ),
    Row(
        "image size the space cannot take",
        "ntknas search --space nb201 --image-size 50",
        "--image-size 50 does not fit space nb201: its networks need images of at least 4 pixels, a "
        "multiple of 4; pass --image-size 48 or 52",
    ),
    Row(
        "networks that cannot run on the image size",
        "a plugin space whose networks need 8 pixels, at "
        "ntknas search --space mylib.spaces:Space --image-size 4",
        "the networks of space … cannot run on 4×4 images (RuntimeError: …); pass another --image-size, "
        "e.g. 32, on which they run",
    ),
    Row(
        "missing data",
        "ntknas search --data missing",
        "data path missing does not exist; give an ImageFolder directory or one of: "
        "cifar10-sample, cifar10, synthetic",
    ),
    Row(
        "a loop of symbolic links",
        "ntknas search --data loop",
        "data path loop is a loop of symbolic links; give an ImageFolder directory or one of: "
        "cifar10-sample, cifar10, synthetic",
    ),
    Row(
        "a file, not an image folder",
        "ntknas search --data notes.txt",
        "data path notes.txt is not a directory; give an ImageFolder (one folder per class)",
    ),
    Row(
        "empty data folder",
        "ntknas search --data empty",
        "no images found in empty: Couldn't find any class folder in empty.",
    ),
    Row(
        "class folders without images",
        "ntknas search --data noimages",
        "no images found in noimages: Found no valid file for the classes a. Supported extensions are: …",
    ),
    Row(
        "corrupt image",
        "ntknas search --data broken --batch-size 7",
        "broken/a/bad.png is not a readable image (not a BMP, JPEG, PNG, PPM, TIFF or WebP file); "
        "remove it or replace it",
    ),
    Row(
        "truncated image",
        "ntknas search --data cut --batch-size 7",
        "cut/a/cut.png is not a readable image (it is truncated); remove it or replace it",
    ),
    Row(
        "empty image file",
        "ntknas search --data zero --batch-size 7",
        "zero/a/zero.png is not a readable image (it is empty: 0 bytes); remove it or replace it",
    ),
    Row(
        "image too large to decode",
        "ntknas search --data huge --batch-size 7",
        "huge/a/huge.png is too large to decode safely (more than 89,478,485 pixels); shrink it or remove it",
    ),
    Row(
        "batch size too large",
        "ntknas search --data imgs --batch-size 64",
        "--batch-size 64 is larger than the data (6 images); use --batch-size 6 or less",
    ),
    Row(
        "CIFAR-10 without its folder",
        "ntknas search --data cifar10",
        "--data cifar10 needs --data-root DIR (the folder holding cifar-10-batches-py)",
    ),
    Row(
        "CIFAR-10 not where it is said to be",
        "ntknas search --data cifar10 --data-root empty",
        "CIFAR-10 not found under empty (expected empty/cifar-10-batches-py); ntknas never downloads: "
        "fetch it yourself or use --data cifar10-sample",
    ),
    Row(
        "CIFAR-10 damaged",
        "ntknas search --data cifar10 --data-root damaged",
        "CIFAR-10 under damaged is incomplete or damaged (a file of damaged/cifar-10-batches-py is missing "
        "or differs from the published one); fetch it again, or use --data cifar10-sample",
    ),
    Row(
        "a source name that is also a folder here",
        "a folder named synthetic in the working directory, then --data synthetic",
        "--data synthetic names the synthetic source, not the folder synthetic/ here; to read that folder, "
        "pass --data ./synthetic",
        "a warning, once; the named source is read",
    ),
    Row(
        "unreachable storage",
        "ntknas search --storage postgresql://u:secret@127.0.0.1:1/db",
        "cannot reach storage postgresql://u:***@127.0.0.1:1/db: connection … failed: Connection refused; "
        "check the URL and that the server is up",
    ),
    Row(
        "wrong password",
        "ntknas search --storage postgresql://postgres:wrong@127.0.0.1:PORT/postgres",
        "cannot reach storage postgresql://postgres:***@127.0.0.1:PORT/postgres: connection … "
        'password authentication failed for user "postgres"; check the URL and that the server is up',
    ),
    Row(
        "'@' left in a password",
        "ntknas search --storage postgresql://u:p@ss@127.0.0.1:1/db",
        "storage URL postgresql://u:***@127.0.0.1:1/db has an '@' in its user name or password; "
        "write each '@' there as %40 (and '/' as %2F, ':' as %3A)",
    ),
    Row(
        "escaped characters in a password",
        "ntknas search --storage postgresql://u:p%40ss%2Fw%20rd@127.0.0.1:1/db",
        "cannot reach storage postgresql://u:***@127.0.0.1:1/db: connection … failed: Connection refused; "
        "check the URL and that the server is up",
    ),
    Row(
        "a password in the query string",
        "ntknas search --storage postgresql://u@127.0.0.1:1/db?password=s3cret",
        "cannot reach storage postgresql://u@127.0.0.1:1/db?password=***: connection … failed: "
        "Connection refused; check the URL and that the server is up",
    ),
    Row(
        "not a URL",
        "ntknas search --storage 'host=db password=s3cret'",
        "storage URL *** is not a URL SQLAlchemy can read; write it as "
        "dialect+driver://user:password@host:port/database (e.g. sqlite:///results/ntknas.db)",
    ),
    Row(
        "missing database driver",
        "ntknas search --storage mysql://u:secret@localhost/db",
        "storage mysql://u:***@localhost/db needs the database driver MySQLdb, which is missing: "
        "install MySQLdb",
    ),
    Row(
        "unwritable SQLite path",
        "ntknas search --storage sqlite:////proc/nope/x.db",
        "cannot open storage sqlite:////proc/nope/x.db: [Errno 2] No such file or directory: '/proc/nope'; "
        "check the path and its permissions",
    ),
    Row(
        "another program's database",
        "ntknas search --storage sqlite:///app.db",
        "app.db is not a database of Optuna studies (it holds table inventory); ntknas leaves it as it is: "
        "give --storage a database made by ntknas, or a new path",
        UNTOUCHED,
    ),
    Row(
        "another program's database, as an SQLite URI",
        "ntknas search --storage 'sqlite:///file:app.db?mode=rwc&uri=true'",
        "app.db is not a database of Optuna studies (it holds table inventory); ntknas leaves it as it is: "
        "give --storage a database made by ntknas, or a new path",
        UNTOUCHED,
    ),
    Row(
        "an SQLite URL with two slashes",
        "ntknas results nb201 --storage sqlite://a.db",
        "storage URL sqlite://a.db names a host (a.db), which an SQLite file has not: write "
        "sqlite:///PATH, three slashes before a relative path (sqlite:///a.db), four before an absolute one",
    ),
    Row(
        "a storage scheme with capitals",
        "ntknas results nb201 --storage SQLITE:///a.db",
        "storage URL SQLITE:///a.db writes its scheme SQLITE with capitals, which SQLAlchemy does not "
        "read; write it in lower case (sqlite://...)",
    ),
    Row(
        "a '?' in an SQLite file name",
        "ntknas search --storage 'sqlite:///we?ird.db'",
        "storage URL sqlite:///we?… has option(s) SQLite does not know (ird.db): it would open we and "
        "read them after the '?'; if the '?' is part of the file name, write it as %3F; else drop them "
        "(SQLite's: …)",
    ),
    Row(
        "an SQLite path under ~",
        "ntknas search --storage 'sqlite:///~/x.db'",
        "storage URL sqlite:///~/x.db starts its path with ~, which SQLite does not expand (it would use "
        "a file or folder named ~ here); write the full path: sqlite:///…",
    ),
    Row(
        "an in-memory database",
        "ntknas results --storage sqlite://",
        "storage sqlite:// is an in-memory database, which holds no studies; give --storage the SQLite "
        "file that does (sqlite:///PATH)",
    ),
    Row(
        "a file that is not a database",
        "ntknas search --storage sqlite:///notes.db",
        "notes.db is not an SQLite database (file is not a database); give --storage a file made by ntknas, "
        "or a new path",
        UNTOUCHED,
    ),
    Row(
        "a mistyped storage for the dashboard",
        "ntknas dashboard --storage sqlite:///results/ntknsa.db",
        "storage file results/ntknsa.db does not exist; check the path (read-only commands never create one)",
    ),
    Row(
        "more workers than memory holds",
        "ntknas search --workers 100000",
        "--workers 100000 would take about … GiB of memory (… MiB each: torch and the data), "
        "and … GiB is available; use --workers … or fewer",
    ),
    Row(
        "study with other settings",
        "ntknas search --space nb201 --batch-size 8 --bn eval",
        "study 'nb201' was created with bn=batch, not bn=eval: resume it with its own settings, "
        "or pass --study NEW_NAME to start another study",
    ),
    Row(
        "study at another image size",
        "ntknas search --space nb201 --batch-size 8 --image-size 48",
        "study 'nb201' was created with image_size=32, not image_size=48: resume it with its own "
        "settings, or pass --study NEW_NAME to start another study",
    ),
    Row(
        "no such study",
        "ntknas results nope",
        "no study named 'nope' in sqlite:///results/ntknas.db; studies: nb201",
    ),
    Row(
        "unknown output format",
        "ntknas results --format xml",
        "unknown --format 'xml'; choose one of: table, csv, json",
    ),
    Row(
        "unknown sort column",
        "ntknas results --sort accuracy",
        "cannot sort by 'accuracy'; choose one of: condition_number, lambda_max, …",
    ),
    Row(
        "ground truth without its accuracy column",
        "ntknas benchmark --ground-truth cols.csv",
        "cols.csv lacks column(s) cifar10_test_acc; it needs index,arch,cifar10_test_acc and has: "
        "index, arch, acc",
    ),
    Row(
        "accuracy that is not a number",
        "ntknas benchmark --ground-truth text.csv",
        "text.csv line 3: cifar10_test_acc 'high' is not a number (accuracy in %)",
    ),
    Row(
        "accuracy that is not finite",
        "ntknas benchmark --ground-truth nan.csv",
        "nan.csv line 2: cifar10_test_acc nan is not a finite number (accuracy in %); fix that row",
    ),
    Row(
        "accuracy out of range",
        "ntknas benchmark --ground-truth range.csv",
        "range.csv line 2: cifar10_test_acc 912.5 is not an accuracy from 0 to 100 %; fix that row",
    ),
    Row(
        "repeated row",
        "ntknas benchmark --ground-truth twice.csv",
        "twice.csv line 3 repeats index '7' of line 2; keep one row per architecture",
    ),
    Row(
        "simulated searches without end",
        "ntknas benchmark --ground-truth gt.csv --scores params --search 2 --runs 100000000",
        "--runs must be from 1 to 100,000; got 100000000",
    ),
    Row(
        "a row without an index",
        "ntknas benchmark --ground-truth noindex.csv",
        "noindex.csv line 3 has no index; give every row its index",
    ),
    Row(
        "malformed arch string in the ground truth",
        "ntknas benchmark --ground-truth arch.csv --format json",
        "arch.csv line 2: unknown op 'conv' on edge 0→1 of the nb201 arch string; "
        "ops: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3",
    ),
    Row(
        "--save onto the ground truth",
        "ntknas benchmark --ground-truth gt.csv --batch-size 8 --scores params --format json --save gt.csv",
        "--save gt.csv is the --ground-truth file gt.csv; writing it would destroy that input: "
        "choose another path",
        UNTOUCHED,
    ),
    Row(
        "ground truth of one row",
        "ntknas benchmark --ground-truth one.csv",
        "one.csv has 1 row(s); ranking needs at least 2 architectures",
    ),
    Row(
        "a column named twice",
        "ntknas benchmark --ground-truth dup.csv",
        "dup.csv has column(s) arch twice; keep one of each",
    ),
    Row(
        "ground truth that is a folder",
        "ntknas benchmark --ground-truth imgs",
        "ground-truth file imgs is not a regular file; give a CSV with columns index,arch,cifar10_test_acc",
    ),
    Row(
        "no metric to rank",
        "ntknas benchmark --ground-truth gt.csv --scores ,",
        "--scores ',' names no metric; give 'all', 'default' or names such as ntk_score",
    ),
    Row(
        "a target that is no accuracy",
        "ntknas benchmark --ground-truth gt.csv --target index",
        "--target 'index' is not an accuracy column; name one, e.g. cifar10_test_acc",
    ),
    Row(
        "saved scores that lack an architecture",
        "ntknas benchmark --ground-truth gt.csv --scored saved.csv",
        "--scored file saved.csv has no row for index 13414 (gt.csv line 2); score it with --save",
    ),
    Row(
        "saved scores and new ones at once",
        "ntknas benchmark --ground-truth gt.csv --scored saved.csv --save out.csv",
        "--scored reads saved scores and --save writes new ones: give one of them",
    ),
    Row(
        "a learning rate that cannot train",
        "ntknas verify nb201 --top 1 --epochs 1 --lr inf",
        "--lr must be a positive, finite number; got inf",
    ),
    Row(
        "a learning rate beyond float32",
        "ntknas verify nb201 --top 1 --epochs 1 --lr 1e308",
        "--lr must be at most 3.4e+38, the largest float32; got 1e+308",
    ),
    Row(
        "a training batch larger than the data",
        "ntknas verify nb201 --top 1 --epochs 1 --batch-size 5000",
        "--batch-size 5000 is larger than the training data (1000 images of cifar10-sample); "
        "use --batch-size 1000 or less",
    ),
    Row(
        "unknown trial to export",
        "ntknas export --trial 9 --out pick",
        "study 'nb201' has no trial 9 (its trials are 0 to 1); pick one from: ntknas results nb201",
    ),
    Row(
        "export into a folder that holds files",
        "ntknas export --out imgs",
        "--out imgs is not empty; give a new folder, so that nothing is overwritten, e.g. --out imgs-2",
    ),
    Row(
        "a space that cannot be imported",
        "ntknas search --space mylib.spaces:Space",
        "search space 'mylib.spaces:Space': cannot import 'mylib.spaces' (No module named 'mylib'); "
        "is its package installed, or its folder on PYTHONPATH?",
    ),
    Row(
        "a class that is not a search space",
        "ntknas search --space ntknas.inputs.data:Images",
        "search space 'ntknas.inputs.data:Images': ntknas.inputs.data:Images is not a "
        "search_spaces.SearchSpace subclass",
    ),
    Row(
        "a budget beyond any count",
        "ntknas search --max-params 1e999999999",
        "--max-params must be at most 9,223,372,036,854,775,807; got '1e999999999'",
    ),
    Row(
        "an underscore that groups no thousands",
        "ntknas search --max-params 9_1.5",
        "--max-params must be a count such as 12000, 300k or 1.5M; got '9_1.5' (an underscore may only group "
        "thousands, as in 1_000_000)",
    ),
    Row(
        "an output path thousands of folders deep",
        "an --out, --save or --storage path of 1,500 nested folders (3,001 characters) is made as any "
        "other; one beyond the system's limit (PATH_MAX), at export --out e/e/…/x",
        "cannot use --out e/e/…/x: File name too long; choose another --out",
    ),
    Row(
        "more threads than CPUs",
        "ntknas score --model resnet18 --threads 100000",
        "--threads must be at most …, the CPUs of this machine; got 100000",
    ),
    Row(
        "a thread setting its library refuses",
        "OMP_NUM_THREADS=abc (or MKL_NUM_THREADS, OMP_WAIT_POLICY), then ntknas score --model resnet18",
        "environment variable OMP_NUM_THREADS='abc' is not a positive whole number such as 2; ignored: "
        "fix it or unset it",
        "a warning; the command goes on, and OpenMP prints nothing of its own",
    ),
    Row(
        "images too large for memory",
        "a --batch-size or --image-size beyond the machine's memory, at ntknas score --model resnet18",
        "not enough memory (it tried to allocate … bytes); use a smaller --batch-size or --image-size, "
        "a smaller model, or fewer --workers",
    ),
    Row(
        "memory the machine would kill the process for",
        "a --batch-size and --image-size whose pass the machine cannot hold, so that the kernel "
        "would kill the process: search --space nb201 --image-size 1024 --batch-size 8",
        "not enough memory (it tried to allocate … bytes); use a smaller --batch-size or --image-size, "
        "a smaller model, or fewer --workers",
        "exit 2, or the trial fails with this reason and the search goes on",
    ),
    Row(
        "a model that mixes the samples of a batch",
        "scores.pntk of a model whose output for a sample depends on other samples (a roll, a mean over "
        "the batch)",
        "ntknas: a sample's output depends on the other samples of the batch; using the per-sample loop, "
        "one backward pass per sample",
        "a warning; the per-sample loop scores it exactly (implementation='hooks' or 'func' refuse)",
    ),
    Row(
        "a kernel that overflows its precision",
        "scores.pntk of a float32 model on inputs of 1e20",
        "the pNTK has entries that are not finite, though the model's outputs are: the per-sample "
        "gradients overflow the model's precision when multiplied; scale the inputs down (normalise "
        "them), or score a float64 copy of the model",
        "ValueError",
    ),
    Row(
        "non-finite model outputs",
        "a candidate whose outputs are NaN or inf, in a search",
        "ValueError: model output has … non-finite values (NaN/inf) of …; "
        "check the model's initialisation and the input scaling",
        STORED,
    ),
    Row(
        "a model without parameters",
        "a candidate with no trainable parameters, in a search",
        "ValueError: model has no trainable parameters (none with requires_grad=True); "
        "unfreeze some with p.requires_grad_(True)",
        STORED,
    ),
    Row(
        "plots into a file",
        "ntknas plot nb201 --out notes.txt",
        "cannot write --out folder notes.txt: notes.txt is not a folder; choose another path",
    ),
    Row(
        "a checkpoint that would run code",
        "a pickled object in a pick's checkpoint, at ntknas verify nb201 --top 1 --epochs 1",
        "checkpoint results/checkpoints/nb201/….pt is unreadable (UnpicklingError); "
        "delete it to train that pick again from scratch",
    ),
    Row(
        "an empty study name",
        "ntknas search --space nb201 --study ''",
        "--study is empty; give it a value, or leave it out for its default",
    ),
    Row(
        "an empty path",
        "ntknas plot nb201 --out ''",
        "--out is empty; give it a value, or leave it out for its default",
    ),
    Row(
        "a storage opened read-only for a command that writes",
        "ntknas search --space nb201 --storage 'sqlite:///file:results/ntknas.db?mode=ro&uri=true'",
        "storage … opens the database read-only (mode=ro); this command writes to it: drop that option, or "
        "give --storage a writable file",
    ),
    Row(
        "a study name a shell cannot carry",
        "a newline in --study, at ntknas search --space nb201 --study NAME",
        "study name 'a\\nb' holds the character \\n, which a shell command cannot carry; "
        "give a name of printable characters",
    ),
    Row(
        "plots over a file ntknas did not write",
        "ntknas plot nb201 --out pictures",
        "--out folder pictures holds history.png, which ntknas did not write; "
        "choose another --out, or pass --force to replace them",
    ),
    Row(
        "a plugin space that fails",
        "a plugin whose build() raises, at ntknas score --space myplugin:Fails --arch w=2",
        "plugin space 'myplugin:Fails': build() failed: RuntimeError: …",
    ),
    Row(
        "a plugin network of the wrong shape",
        "a plugin network with 3 outputs for 10 classes, at ntknas score --space myplugin:Narrow --arch w=2",
        "plugin space 'myplugin:Narrow': the network built by build() returns (2, 3) for 2 images in "
        "eval mode; it must return a tensor of shape (N, num_classes) = (2, 10) in every mode",
    ),
    Row(
        "a plugin name two packages register",
        "two packages registering the space toy, at ntknas search --space toy",
        "plugin space 'toy' is registered by more than one package: one.space:Space and two.space:Space; "
        "uninstall all but one",
    ),
    Row(
        "a heartbeat beyond a day",
        "ntknas search --heartbeat 99999999999999",
        "--heartbeat must be a number from 1 to 86400; got 99999999999999",
    ),
    Row(
        "--save onto a file of the user's",
        "ntknas benchmark --ground-truth gt.csv --scores params --save notes.txt",
        "--save file notes.txt holds other columns than this run writes (index, arch, cifar10_test_acc, "
        "params, scored_with), so it is no earlier --save of it; choose another path, or delete the file",
        UNTOUCHED,
    ),
    Row(
        "a --save file scored with other settings",
        "kept.csv scored with --bn batch, resumed by ntknas benchmark --ground-truth gt.csv --scores "
        "params --bn eval --save kept.csv",
        "--save file kept.csv line 2 was scored with 'space=nb201 … bn=batch …', not 'space=nb201 … "
        "bn=eval …'; give another --save path, or delete the file",
        UNTOUCHED,
    ),
    Row(
        "a plugin that exits",
        "a plugin whose build() calls sys.exit(3), at ntknas score --space myplugin:Exits --arch w=2",
        "plugin space 'myplugin:Exits': build() failed: SystemExit: 3",
    ),
    Row(
        "a plugin whose sample() raises",
        "a plugin whose sample() raises, at "
        "ntknas search --space myplugin:Draws --data synthetic --batch-size 4",
        "plugin space 'myplugin:Draws': sample() failed: ValueError: no width left",
    ),
    Row(
        "a plugin network whose methods fail",
        "a plugin network whose state_dict() raises, at ntknas export good --out pick",
        "plugin space '…': the network's state_dict() failed: RuntimeError: …",
    ),
    Row(
        "a plugin that changes what it shares",
        "a plugin network that closes sys.stdout, replaces sys.stderr or changes directory as it runs, "
        "in a search",
        "(none)",
        "exit 0; the streams are lent unclosable and each change is undone as the plugin's call returns",
    ),
    Row(
        "saved scores of other architectures",
        "ntknas benchmark --ground-truth gt.csv --scored other.csv",
        "--scored file other.csv line 2 scores another architecture for index 13414 than gt.csv line 2; "
        "score this ground truth with --save",
    ),
    Row(
        "saved scores with a repeated row",
        "ntknas benchmark --ground-truth gt.csv --scored again.csv",
        "--scored file again.csv line 10 repeats index '13414' of line 2; keep one row per architecture",
    ),
    Row(
        "a budget no network meets",
        "ntknas search --space nb201 --study small --max-params 10",
        "no network of space nb201 is within the budget: the fewest are 73,306 params; "
        "raise --max-params to at least 73,306",
        "exit 2; no study is made",
    ),
    Row(
        "a damaged database",
        "one damaged page in results/ntknas.db, at ntknas results nb201",
        "storage sqlite:///results/ntknas.db is damaged (…); "
        "restore it from a copy, or give --storage a new path",
        UNTOUCHED,
    ),
    Row(
        "a full disk under the storage",
        "the disk fills during ntknas search --space nb201",
        "disk full writing storage sqlite:///results/ntknas.db: "
        "free space and run the same command to resume",
        "exit 2; the running trial is failed, none is left running",
    ),
    Row(
        "a storage another program keeps locked",
        "another program holds the write lock of results/ntknas.db, at ntknas search --space nb201",
        "storage … is locked by another program: waiting up to 30 s for it (Ctrl-C stops)",
        "a one-line warning after 2 s; Ctrl-C or SIGTERM stops the wait at once (exit 130 or 143); "
        "still locked after 30 s: exit 2, the storage named and the fix (let it finish, then resume)",
    ),
    Row(
        "a write another program left unfinished",
        "a rollback-journal database whose writer died mid-write, at ntknas results tiny",
        "storage …: rolled back a write that another program left unfinished (…-journal), as SQLite "
        "does; what was committed is unchanged",
        "a one-line warning; then the command reads what was committed",
    ),
    Row(
        "a data folder resumed from another directory",
        "a study searched with --data one, resumed with --data one from another directory that has "
        "its own one/",
        "study 'd' was created with data=/…/one, not data=/…/one: resume it with its own settings, or "
        "pass --study NEW_NAME to start another study",
    ),
    Row(
        "a study whose images changed since",
        "a study searched with --data imgs, resumed after a class was added to imgs or its images rewritten",
        "study 'd' was scored on another minibatch than --data /…/imgs gives now (its images or classes "
        "changed since): restore them, or pass --study NEW_NAME to start another study",
    ),
    Row(
        "a plugin that ends the process",
        "a plugin network whose forward() calls os._exit(5), at ntknas search --space ends_space:Space",
        "10 candidates in a row failed; the last: plugin space 'ends_space:Space': the network's "
        "forward() failed: ProcessExit: os._exit(5)",
        "exit 2; every trial failed with its reason, none left running",
    ),
    Row(
        "a plugin thread that never ends",
        "a plugin network whose forward() starts a thread that never ends, at ntknas score --space "
        "ends_space:Space --arch w=2",
        "… thread(s) still running at exit (…); not waiting for them",
        "a one-line warning; the command ends with its own exit code",
    ),
    Row(
        "a planted reference cache file",
        "a link, a FIFO, NaN or another space's file where a plugin space's reference is cached",
        "cached reference … is not usable (…); measuring it again",
        "a one-line warning; measured again; a link's target is left as it was",
    ),
    Row(
        "a dashboard open to the network",
        "ntknas dashboard --host 0.0.0.0",
        "--host 0.0.0.0 serves the dashboard, which has no login and can delete studies, to other "
        "machines; use --host 127.0.0.1 unless every machine that reaches it may",
        "a one-line warning; then it serves",
    ),
    Row(
        "output to a full disk",
        "ntknas results nb201 --format csv > /dev/full",
        "disk full writing the output (No space left on device): free space and run the same command",
    ),
    Row(
        "interrupted run",
        "Ctrl-C during ntknas search --space nb201 --batch-size 8 --trials 5",
        "interrupted: 2 of 5 configurations are scored in study 'nb201' (sqlite:///results/ntknas.db); "
        "run the same command to resume",
        "exit 130",
    ),
    Row(
        "an output whose reader went away",
        "a reader that stops early: ntknas results nb201 --format csv piped into head -1",
        "(none)",
        "exit 141, as a Unix tool the pipe stopped; nothing on stderr, the stored trials unchanged",
    ),
    Row(
        "a stored setting edited by hand",
        "a study whose objective was set to 'nope' with Optuna's set_user_attr, at ntknas results nb201",
        "study 'nb201' stores objective='nope', which is not a metric of this ntknas: its settings were "
        "changed outside ntknas; set it back, or start another study with --study NEW_NAME",
        "exit 2; `studies` still lists the storage",
    ),
    Row(
        "a stored Optuna direction edited by hand",
        "a study whose study_directions row was set to MAXIMIZE for an objective that ranks lower first, "
        "at results, export, verify, plot, dashboard or a resumed search",
        "study 'tiny' stores the Optuna direction(s) maximize, and its settings rank by minimize: its "
        "settings were changed outside ntknas; set them back, or start another study with --study NEW_NAME",
        "exit 2; `studies` still lists the storage",
    ),
    Row(
        "a stored setting that no longer works",
        "a study whose image_size was set to 5 with Optuna's set_user_attr (or its space, data or "
        "batch_size to what cannot be read now), at export, verify or plot",
        "study 'tiny' stores space=nb201, image_size=5, which cannot be used here: --image-size 5 does not "
        "fit space nb201: …",
        "exit 2; nothing written, the stored trials unchanged",
    ),
    Row(
        "a class folder named like a split",
        "a folder vehicles whose class folders are bus/, train/ and truck/, at ntknas search --data vehicles",
        "vehicles has train/ beside other folders (bus, truck): are they splits or classes? Put each "
        "split's class folders in vehicles/train/ and vehicles/test/, or rename a class folder called so",
        "exit 2",
    ),
    Row(
        "an image folder of one class",
        "a folder only whose one class folder is cat/, at ntknas search --data only",
        "only has 1 class folder (cat); a classifier needs at least 2: give each class a folder of its "
        "images",
        "exit 2",
    ),
    Row(
        "a comma too many in a CSV row",
        "a gt.csv whose line 3 has a count typed as 1,073,306, at ntknas benchmark --ground-truth gt.csv",
        "ground-truth file gt.csv line 3 has 6 cells, not 4; fix that row (quote a cell that holds a comma)",
        "exit 2",
    ),
    Row(
        "a describe() that leaves a choice out",
        "a plugin whose describe() names w but not d, at ntknas search --space myplugin:Lossy",
        "plugin space 'myplugin:Lossy': describe() and parse() do not round-trip: … is described "
        "as '…', which parse() reads as …; describe() must name every choice of the configuration",
        "exit 2",
    ),
    Row(
        "a build() that draws from another random source",
        "a plugin whose build() uses Python's random, at ntknas export myplugin:Space --out pick",
        "plugin space '…': build() gave other initial weights for '…' than the network the search "
        "scored, under the same seed; build() must draw its randomness from torch's generator "
        "alone (not Python's random or NumPy's)",
        "exit 2; nothing is written (verify: nothing is trained)",
    ),
    Row(
        "a study deleted while a command writes it",
        "the dashboard's Delete button pressed under a running ntknas search",
        "a study or trial in storage … was deleted while this command used it (by the dashboard or "
        "another program); run the same command to start again",
        "exit 2",
    ),
    Row(
        "a storage file moved away while written",
        "results/ntknas.db moved to another name while ntknas search --space nb201 runs",
        "storage file …ntknas.db was moved or deleted while this command wrote it: what it wrote "
        "since may be only in ntknas.db-wal beside it; put the file back at …ntknas.db (before "
        "anything opens that path), then run the same command to resume",
        "exit 2 at the next candidate; once the file is back, the trials written meanwhile are in it",
    ),
    Row(
        "too many open files",
        "ulimit -n 12, then ntknas search --space nb201 --workers 2",
        "too many open files (Too many open files): raise the limit (ulimit -n, now 12), or use "
        "fewer --workers",
        "exit 2",
    ),
    Row(
        "a memory limit below what torch maps",
        "ulimit -v 2000000, then ntknas search --space nb201",
        "not enough memory to load a library (…: failed to map segment from shared object): the "
        "process's address-space limit (ulimit -v) is too low; raise it (torch needs about 4 GB)",
        "exit 2",
    ),
    Row(
        "two verify runs of one study at once",
        "a second ntknas verify nb201 while the first runs on this machine",
        "another `ntknas verify` of study 'nb201' is running on this machine (it holds "
        "results/checkpoints/nb201/.verify.lock): let it finish, then run this one",
        "exit 2; a result that another machine stored meanwhile is replaced only by a better founded one",
    ),
    Row(
        "one network written two ways in a ground truth",
        "a gt.csv whose lines 2 and 4 hold one resnet written with its fields in another order, at "
        "ntknas benchmark --ground-truth gt.csv --space resnet",
        "gt.csv line 4 repeats the architecture of gt.csv line 2: both read as '…'; keep one row "
        "per architecture",
        "exit 2",
    ),
    Row(
        "an nsga2 objective that is its cost",
        "ntknas search --sampler nsga2 --objective params",
        "--objective params and --cost params are one metric: nsga2 would weigh it against itself; "
        "choose another --cost (it is params unless given)",
        "exit 2",
    ),
    Row(
        "labels that are no class indices",
        'ntknas.scoring.metrics.compute(model, x, torch.tensor([0, 1]), ["lga"]) with x of 4 images',
        "labels must have shape (N,) = (4,), one per sample; got (2,)",
        "ValueError (a float, bool or negative label, one beyond the outputs, or no tensor: one line each)",
    ),
    Row(
        "a kernel that is not symmetric",
        "scores.spectrum(torch.tensor([[4., 100.], [0., 1.]]))",
        "kernel is not symmetric (max |K - Kᵀ| is … of its largest entry); a pNTK is: pass (K + "
        "K.T) / 2 if the difference is round-off",
        "ValueError; a symmetric kernel of any finite size is read exactly, scaled by a power of two",
    ),
    Row(
        "an output cut off from the parameters",
        "a forward that returns self.fc(x).detach(), at scores.pntk",
        "model output does not depend on its trainable parameters (no gradient reaches it: a "
        ".detach(), torch.no_grad() or .item() in forward?); return logits computed from them",
        "ValueError",
    ),
    Row(
        "a forward that hides calls from the fast path",
        "a layer called and its output dropped while its weight is used by F.linear; a branch fed "
        "by x.clone().requires_grad_(); self.fc(input=x); a layer called per sample or on a "
        "sequence-first tensor; a global forward hook that changes outputs",
        "ntknas: fast path unavailable (…); using the slower torch.func path",
        "a warning, and the kernel of the per-sample reference (before: a wrong kernel without a "
        "word, or torch's error); a layer under torch.no_grad() and a conv whose padding was set "
        "after construction are scored right by the fast path itself",
    ),
    Row(
        "a stored metric that is no number",
        "a hand edit storing 'abc', a list or true as a trial's params, then ntknas results",
        "1 stored value(s) are no numbers and are left out (trial … stores params=…): they were changed "
        "outside ntknas",
        "a warning; the cell is blank and the rest of the table stands (before: shown as stored)",
    ),
    Row(
        "a working directory that was deleted",
        "any command run in a folder another shell removed (rm -r in a second terminal)",
        "the working directory no longer exists (deleted or moved): cd to an existing folder and run "
        "the command again",
    ),
    Row(
        "rows of a --scored file scored different ways",
        "a scores.csv whose lines 2 and 3 were scored with seeds 0 and 1, at ntknas benchmark "
        "--ground-truth gt.csv --scored scores.csv",
        "--scored file scores.csv lines 2 and 3 were scored with other settings ('…seed=0…' and "
        "'…seed=1…'): their scores do not rank together; score the ground truth again with --save",
        "exit 2; rows of another space than --space are refused too (before: ranked together)",
    ),
    Row(
        "a library or plugin logs an exception",
        "a plugin module that logs an error with its traceback, or SQLAlchemy's pool when a stop "
        "lands as it closes a connection",
        "warning: plugin.noisy: could not connect: ValueError: boom",
        "one warning line, no traceback; a record about a stop (Ctrl-C, SIGTERM) is not shown",
    ),
]
COMMANDS = [
    r
    for r in ROWS
    if r.example.startswith("ntknas ") and r.outcome.startswith("exit ") and ">" not in r.example
]
KINDS = {r.kind: r for r in ROWS}


def matches(message: str, line: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, message.split("…"))), line) is not None


def documented_rows() -> list[tuple[str, ...]]:
    """The rows of the page's one table (after its header), as (kind, example, message, outcome)."""
    lines = [line for line in TABLE.read_text().splitlines() if line.startswith("| ")][1:]
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return [
        (kind, example.strip("`"), message.strip("`"), outcome) for kind, example, message, outcome in cells
    ]


def test_the_documented_table_is_this_table():
    assert documented_rows() == [tuple(r) for r in ROWS]
    assert len(ROWS) >= 15


def test_every_row_is_a_test():
    """Each row runs as a command (test_command), at a command (test_hostile_input_at_a_command),
    or in a test that reads its message from the table by name (``KINDS["kind"]``)."""
    sources = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    named = set(re.findall(r"KINDS\[[\"']([^\"']+)[\"']\]", sources))
    untested = [r.kind for r in ROWS if r not in COMMANDS and r not in AT_A_COMMAND and r.kind not in named]
    assert untested == []


PLUGIN = """\
import sys

from search_spaces import SearchSpace


class Fails(SearchSpace):
    name, summary, size = "fails", "a space whose build() raises", 2

    def sample(self, trial):
        return trial.suggest_categorical("w", (2, 3))

    def build(self, config, num_classes=10, channels=3, image_size=32):
        raise RuntimeError(f"[bold]no network of width {config}[/]\\nsecond line")

    def describe(self, config):
        return f"w={config}"

    def parse(self, text):
        return int(text[2:])


class Exits(Fails):
    def build(self, config, num_classes=10, channels=3, image_size=32):
        sys.exit(3)


class Draws(Fails):
    def sample(self, trial):
        raise ValueError("no width left")


class Narrow(Fails):
    def build(self, config, num_classes=10, channels=3, image_size=32):
        from torch import nn

        return nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size**2, 3))
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A working directory holding study 'nb201' with two trials, and bad data beside it."""
    root = tmp_path_factory.mktemp("stored")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert (
            runner.invoke(
                cli.app, ["search", "--space", "nb201", "--trials", "2", "--batch-size", "8"]
            ).exit_code
            == 0
        )
    rng = np.random.default_rng(0)
    for folder in ("imgs", "broken"):
        for c in ("a", "b"):
            (root / folder / c).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / folder / c / f"{i}.png")
    (root / "broken" / "a" / "bad.png").write_text("not an image")
    for folder, name, content in (
        ("cut", "cut.png", png(rng.integers(0, 255, (32, 32, 3)), bits=8)[:200]),
        ("zero", "zero.png", b""),
        ("huge", "huge.png", png_claiming(10_000, 10_000)),
    ):
        shutil.copytree(root / "imgs", root / folder)
        (root / folder / "a" / name).write_bytes(content)
    foreign(root)
    shutil.copy(TINY, root / "gt.csv")
    truth = [line.split(",")[:2] for line in TINY.read_text().splitlines()[1:]]
    for name, rows in {
        "other.csv": [[truth[0][0], truth[1][1]], *truth[1:]],
        "again.csv": [*truth, truth[0]],
    }.items():
        lines = [f"{index},{arch},{1000 + n}\n" for n, (index, arch) in enumerate(rows)]
        (root / name).write_text("index,arch,params\n" + "".join(lines))
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    header = "index,arch,cifar10_test_acc\n"
    for name, rows in {
        "cols.csv": f"index,arch,acc\n1,{arch},90\n",
        "text.csv": f"{header}1,{arch},90\n2,{arch.replace('0|+', '1|+', 1)},high\n",
        "nan.csv": f"{header}1,{arch},nan\n",
        "range.csv": f"{header}1,{arch},912.5\n",
        "twice.csv": f"{header}7,{arch},90\n7,{arch.replace('none~2', 'skip_connect~2')},91\n",
        "noindex.csv": f"{header}1,{arch},90\n ,{arch.replace('none~2', 'skip_connect~2')},91\n",
        "arch.csv": f"{header}1,{arch.replace('nor_conv_3x3~0|+', 'conv~0|+')},90\n2,{arch},80\n",
        "one.csv": f"{header}1,{arch},90\n",
        "dup.csv": f"index,arch,arch,cifar10_test_acc\n1,{arch},{arch},90\n",
        "saved.csv": f"{header[:-1]},params\n1,{arch},90,1000\n",
    }.items():
        (root / name).write_text(rows)
    (root / "empty").mkdir()
    (root / "damaged" / "cifar-10-batches-py").mkdir(parents=True)
    (root / "damaged" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"cut short")
    (root / "noimages" / "a").mkdir(parents=True)
    (root / "noimages" / "a" / "notes.txt").write_text("no image here")
    (root / "notes.txt").write_text("no image here")
    (root / "pictures").mkdir()
    (root / "pictures" / "history.png").write_bytes(b"the user's own picture")
    (root / "myplugin.py").write_text(PLUGIN)
    os.symlink("loop", root / "loop")
    return root


@pytest.fixture
def workdir(stored, tmp_path, monkeypatch):
    shutil.copytree(stored, tmp_path / "work", symlinks=True)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.fixture(scope="module")
def postgres():
    if distributed.unavailable() is not None:
        pytest.skip(distributed.unavailable())
    with distributed.cluster() as url:
        yield url


def stored_trials(name="nb201"):
    """The study's trials and its attributes (which hold verification results)."""
    study = optuna.load_study(study_name=name, storage=default_url())
    return study.user_attrs, [(t.number, t.state, t.values, t.user_attrs) for t in study.get_trials()]


def user_files(root: Path) -> dict[str, str]:
    """Every file under ``root`` but the studies' folder, with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != "results"
    }


def secrets(example: str) -> list[str]:
    """The passwords an example command holds, as typed and %-decoded."""
    found = re.findall(r"://[^:/@]+:(.+)@", example) + re.findall(r"password=([^&\s']+)", example)
    return [form for secret in found for form in (secret, unquote(secret))]


@pytest.mark.parametrize("row", COMMANDS, ids=[r.kind for r in COMMANDS])
def test_command(row, workdir, request):
    example, message = row.example, row.message
    if "PORT" in example:
        port = request.getfixturevalue("postgres").rsplit(":", 1)[1].split("/")[0]
        example, message = example.replace("PORT", port), message.replace("PORT", port)
    if row.kind == "CUDA without a GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    before, files = stored_trials(), user_files(workdir)
    result = runner.invoke(cli.app, shlex.split(example)[1:])
    assert row.outcome.split(";")[0] == f"exit {result.exit_code}", result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert matches(f"error: {message}", result.stderr.strip()), result.stderr
    assert not any(secret in result.output for secret in secrets(example)), result.output
    assert stored_trials() == before and user_files(workdir) == files


class EntryPoint(NamedTuple):
    name: str
    value: str


AT_A_COMMAND = [
    KINDS[kind]
    for kind in (
        "a study name a shell cannot carry",
        "a plugin space that fails",
        "a plugin network of the wrong shape",
        "a plugin name two packages register",
        "a plugin that exits",
        "a plugin whose sample() raises",
    )
]


@pytest.mark.parametrize("row", AT_A_COMMAND, ids=[r.kind for r in AT_A_COMMAND])
def test_hostile_input_at_a_command(row, workdir, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # importing the plugin leaves no file
    twice = [EntryPoint("toy", "one.space:Space"), EntryPoint("toy", "two.space:Space")]
    monkeypatch.setattr(search_spaces, "entry_points", lambda group: twice)
    args = ["a\nb" if a == "NAME" else a for a in shlex.split(row.example.split(", at ")[1])[1:]]
    before, files = stored_trials(), user_files(workdir)
    result = runner.invoke(cli.app, args)
    assert f"exit {result.exit_code}" == row.outcome, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert matches(f"error: {row.message}", result.stderr.strip()), result.stderr
    assert stored_trials() == before and user_files(workdir) == files


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_output_to_a_full_disk(workdir):
    row = KINDS["output to a full disk"]
    command, target = row.example.split(" > ")
    with open(target, "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "ntknas", *shlex.split(command)[1:]],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert f"exit {done.returncode}" == row.outcome
    assert matches(f"error: {row.message}", done.stderr.strip()), done.stderr


def failing_search(fails) -> list:
    """A search of the tiny width space in the working directory's storage: two good trials, then
    one that ``fails`` (a function making a model bad), then one more good trial."""

    class Space(Widths):
        def build(self, config, num_classes=10, channels=3, image_size=32):
            net = super().build(config, num_classes, channels, image_size)
            return fails(net) if self.built == 3 else net

    study = open_study("widths", default_url(), settings(), "random")
    space = Space(range(4, 100))
    search(study, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 2)
    _, before = stored_trials("widths")
    search(study, objective_of(space, settings(), BATCH, 3, "cpu"), settings(), 3)
    _, after = stored_trials("widths")
    assert after[:2] == before and len(after) == 4
    return study.get_trials()


def test_non_finite_outputs(workdir):
    def explode(net):
        nn.init.constant_(net[1].weight, float("inf"))
        return net

    nb201 = stored_trials()
    *_, failed, last = failing_search(explode)
    assert failed.state == optuna.trial.TrialState.FAIL and last.state == optuna.trial.TrialState.COMPLETE
    assert matches(KINDS["non-finite model outputs"].message, failed.user_attrs["fail_reason"])
    assert stored_trials() == nb201


def test_a_model_without_parameters(workdir):
    *_, failed, last = failing_search(lambda net: net.requires_grad_(False))
    assert failed.state == optuna.trial.TrialState.FAIL and last.state == optuna.trial.TrialState.COMPLETE
    assert matches(KINDS["a model without parameters"].message, failed.user_attrs["fail_reason"])


def test_interrupted_run(workdir, monkeypatch):
    monkeypatch.setattr(StopRequest, "requested", lambda self: True)  # Ctrl-C before the first candidate
    row = KINDS["interrupted run"]
    before = stored_trials()
    result = runner.invoke(cli.app, shlex.split(row.example.removeprefix("Ctrl-C during "))[1:])
    assert f"exit {result.exit_code}" == row.outcome
    assert matches(row.message, result.stderr.strip())
    assert stored_trials() == before


class Planted:
    """Unpickling this runs code: it touches ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


def test_a_checkpoint_that_would_run_code(workdir):
    row = KINDS["a checkpoint that would run code"]
    (pick,) = verify.top_picks(optuna.load_study(study_name="nb201", storage=default_url()), 1)
    checkpoint = verify.checkpoint_path("nb201", pick.number)
    checkpoint.parent.mkdir(parents=True)
    torch.save({"stamp": Planted(workdir / "pwned")}, checkpoint)
    before = stored_trials()
    result = runner.invoke(cli.app, shlex.split(row.example.split(", at ")[1])[1:])
    assert f"exit {result.exit_code}" == row.outcome, result.output
    assert matches(f"error: {row.message}", result.stderr.strip())
    assert not (workdir / "pwned").exists()
    assert stored_trials() == before


def test_passwords_are_masked_wherever_they_appear():
    assert mask("postgresql+psycopg://u:s3cr@t@db:5432/x") == "postgresql+psycopg://u:***@db:5432/x"
    assert mask("postgresql://u@db/x?sslmode=require&password=s3cret") == (
        "postgresql://u@db/x?password=***&sslmode=require"
    )
    assert redact("cannot reach mysql://u:pw@h/db: refused", "mysql://u:pw@h/db") == (
        "cannot reach mysql://u:***@h/db: refused"
    )
    assert mask("sqlite:///results/ntknas.db") == "sqlite:///results/ntknas.db"


class NeedsEight(Widths):
    """Networks with an 8 × 8 average pool: they cannot run on images smaller than 8 pixels."""

    name = "needs8"

    def build(self, config, num_classes=10, channels=3, image_size=32):
        pool = nn.Sequential(
            nn.Conv2d(channels, config, 3, padding=1), nn.AvgPool2d(8), nn.AdaptiveAvgPool2d(1)
        )
        return nn.Sequential(pool, nn.Flatten(), nn.Linear(config, num_classes))


def test_networks_that_cannot_run_on_the_image_size(workdir, monkeypatch):
    row = KINDS["networks that cannot run on the image size"]
    monkeypatch.setattr("search_spaces._LOADED", {"mylib.spaces:Space": NeedsEight([4])})
    before = stored_trials()
    result = runner.invoke(cli.app, shlex.split(row.example.split(", at ")[1])[1:])
    assert f"exit {result.exit_code}" == row.outcome, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert matches(f"error: {row.message}", result.stderr.strip()), result.stderr
    assert stored_trials() == before and not (workdir / "results" / "checkpoints").exists()


def test_images_too_large_for_memory(workdir, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 480000000000 bytes. Error code 12 (Cannot allocate memory)"
        )

    row = KINDS["images too large for memory"]
    monkeypatch.setattr("ntknas.scoring.metrics.compute", out_of_memory)  # as a huge batch or size would
    result = runner.invoke(cli.app, [*shlex.split(row.example.split(", at ")[1])[1:], "--batch-size", "4"])
    assert f"exit {result.exit_code}" == row.outcome, result.output
    assert matches(f"error: {row.message}", result.stderr.strip()), result.stderr
