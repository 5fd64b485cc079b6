#!/usr/bin/env python3
"""A prs loop trainer for GPU machines: TRL's SFTTrainer with a PEFT LoRA, on prs's exports.

In a loop config:

    trainer:
      command: "python scripts/loop-trainers/trl_peft.py --data {data} --base {base} --init {init} --out {out}"

Each iteration, prs gives the directory of what to train on ({data}/sft.jsonl: TRL's
conversational `messages`, the preference-conditioned prompt and the selected answer), the base
model, the adapter to continue from (empty at the first iteration) and where the adapter must
be. This script trains on the assistant turns only, keeps the PEFT adapter beside {out}
(OUT.peft/, which the next iteration continues), and then either

  * writes {out} as llama.cpp's LoRA GGUF (the default; converted by `prs model export-adapter`,
    prs's own PEFT reader, with $PRS_BIN, which prs loop sets), so prs samples and evaluates the
    new policy in-process as embedded:BASE.gguf+OUT.gguf (prs also reads OUT.peft/ directly), or
  * with PRS_VLLM_URL=http://HOST:8000/v1, asks that vLLM server to load the adapter as a LoRA
    module (vLLM started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, on a
    file system where it sees OUT.peft/) and prints `policy: openai:URL#NAME`, so the loop's
    next sampling and evaluation run on the cluster.

The base is a Hugging Face model id or directory (PRS_HF_MODEL or --hf-model; needed for the
vLLM route), or the GGUF prs uses (transformers dequantizes it). Progress lines are printed as
JSON ({"step", "steps", "loss"}), which prs shows and keeps as the loss curve.

Needs: torch, transformers, peft, trl. (A loop config's `serve:` does the vLLM route for any
trainer: prs exports each adapter to PEFT and loads it into the server itself.)
"""
import argparse
import json
import os
import subprocess
import sys
import urllib.request



def load_base(base, hf_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if hf_model:
        tok = AutoTokenizer.from_pretrained(hf_model)
        model = AutoModelForCausalLM.from_pretrained(hf_model, dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    else:
        folder, name = os.path.split(os.path.abspath(base))
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        # The GGUF's weights are dequantized to float32 on load: train them as a plain model.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return tok, model


def examples(data_dir):
    """sft.jsonl conversations as TRL's conversational prompt-completion records (loss on the answer)."""
    rows = []
    path = os.path.join(data_dir, "sft.jsonl")
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            messages = json.loads(line)["messages"]
            if not messages or messages[-1]["role"] != "assistant":
                sys.exit(f"{path}:{n}: messages: the last message must be the assistant's answer")
            rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return rows


def write_gguf_adapter(peft_dir, base, out):
    """The PEFT adapter as llama.cpp's LoRA GGUF, converted by prs itself (its q/k rows put in
    GGUF's order by the base GGUF's heads)."""
    prs = os.environ.get("PRS_BIN", "prs")
    subprocess.run([prs, "model", "export-adapter", peft_dir, "--format", "gguf", "--out", out, "--model", base], check=True,
                   stdout=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--base", required=True)
    p.add_argument("--init", default="")
    p.add_argument("--out", required=True)
    p.add_argument("--hf-model", default=os.environ.get("PRS_HF_MODEL", ""))
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32)
    p.add_argument("--epochs", type=float, default=2)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=-1)
    args = p.parse_args()

    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tok, model = load_base(args.base, args.hf_model)
    stem = args.out[:-5] if args.out.endswith(".gguf") else args.out
    peft_dir = stem + ".peft"
    init_dir = (args.init[:-5] if args.init.endswith(".gguf") else args.init) + ".peft" if args.init else ""
    if init_dir and os.path.isdir(init_dir):
        model = PeftModel.from_pretrained(model, init_dir, is_trainable=True)
    else:
        model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))

    class Progress(TrainerCallback):
        def on_log(self, _args, state, _control, logs=None, **_):
            if logs and "loss" in logs:
                print(json.dumps({"step": state.global_step, "steps": state.max_steps, "loss": logs["loss"]}), flush=True)

    config = SFTConfig(output_dir=os.path.join(os.path.dirname(args.out) or ".", "trl-work"), num_train_epochs=args.epochs,
                       max_steps=args.max_steps, learning_rate=args.lr, per_device_train_batch_size=args.batch_size,
                       lr_scheduler_type="cosine", warmup_steps=1, logging_steps=1, save_strategy="no", report_to=[],
                       seed=int(os.environ.get("PRS_SEED", "0")), bf16=torch.cuda.is_available(),
                       use_cpu=not torch.cuda.is_available())
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(examples(args.data)),
                         processing_class=tok, callbacks=[Progress()])
    trainer.train()
    trainer.model.save_pretrained(peft_dir)

    vllm = os.environ.get("PRS_VLLM_URL", "")
    if vllm:
        name = f"{os.environ.get('PRS_CHAIN', 'loop')}-iter-{os.environ.get('PRS_ITERATION', '0')}"
        root = vllm[:-3] if vllm.endswith("/v1") else vllm
        req = urllib.request.Request(root + "/v1/load_lora_adapter", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"lora_name": name, "lora_path": os.path.abspath(peft_dir)}).encode())
        urllib.request.urlopen(req).read()
        print(f"policy: openai:{vllm}#{name}", flush=True)
    else:
        write_gguf_adapter(peft_dir, args.base, args.out)


if __name__ == "__main__":
    main()
