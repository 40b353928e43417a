import marshal
import os
import pickle
import subprocess

import torch
import yaml


def cases(path, data, user_input):
    # ruleid: scribe-shell-true
    subprocess.run(f"sox {path} out.wav", shell=True)
    # ruleid: scribe-shell-true
    os.system("rm -rf " + path)
    # ok: scribe-shell-true
    subprocess.run(["sox", path, "out.wav"], check=True)
    # ruleid: scribe-dynamic-code
    eval(user_input)
    # ruleid: scribe-dynamic-code
    exec(user_input)
    # ok: scribe-dynamic-code
    model.eval()
    # ok: scribe-dynamic-code
    session.exec(statement)
    # ruleid: scribe-unsafe-deserialization
    pickle.loads(data)
    # ruleid: scribe-unsafe-deserialization
    marshal.loads(data)
    # ruleid: scribe-unsafe-deserialization
    torch.load(path)
    # ruleid: scribe-unsafe-deserialization
    yaml.load(data)
    # ruleid: scribe-unsafe-deserialization
    yaml.load(data, Loader=yaml.Loader)
    # ok: scribe-unsafe-deserialization
    yaml.load(data, Loader=yaml.SafeLoader)
    # ok: scribe-unsafe-deserialization
    yaml.safe_load(data)
