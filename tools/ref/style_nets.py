#!/usr/bin/python3
"""style_nets.py: the three feed-forward style networks users bring as PyTorch files, written
with real torch.save so tests see the exact state-dict layouts of the files in the wild.

    style_nets.py OUTDIR

writes OUTDIR/johnson.pth (the TransformerNet of PyTorch's fast_neural_style example: Johnson
et al. 2016 with instance norm and upsample-convolutions), OUTDIR/cyclegan.pth (the CycleGAN
ResnetGenerator, 9 residual blocks, instance norm without affine parameters) and
OUTDIR/animeganv2.pth (the AnimeGANv2 generator as its PyTorch port lays it out: block_a ...
block_e and out_layer), each with random weights, plus OUTDIR/style_nets.json listing every
file's tensor names and shapes as torch reports them. Exits 77 without torch.

The modules are written here from the papers' descriptions (layer order and widths), so the
state-dict names match what those projects save; the weights are random.
"""
import json
import os
import sys

try:
    import torch
    from torch import nn
except ImportError:
    print("python3-torch is not installed", file=sys.stderr)
    sys.exit(77)


class ConvLayer(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(k // 2)
        self.conv2d = nn.Conv2d(cin, cout, k, stride)


class UpsampleConvLayer(ConvLayer):
    pass


class ResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ConvLayer(c, c, 3, 1)
        self.in1 = nn.InstanceNorm2d(c, affine=True)
        self.conv2 = ConvLayer(c, c, 3, 1)
        self.in2 = nn.InstanceNorm2d(c, affine=True)


class TransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvLayer(3, 32, 9, 1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, 3, 2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, 3, 2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        for i in range(1, 6):
            setattr(self, f"res{i}", ResidualBlock(128))
        self.deconv1 = UpsampleConvLayer(128, 64, 3, 1)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, 3, 1)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)


class ResnetBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))


class ResnetGenerator(nn.Module):
    def __init__(self, ngf=64, n_blocks=9):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2 ** i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * m * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(ngf * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)


def conv_norm_lrelu(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride, groups=groups, bias=False),
                         nn.GroupNorm(1, cout, affine=True), nn.LeakyReLU(0.2, True))


class InvertedResBlock(nn.Module):
    def __init__(self, cin, cout, expansion=2):
        super().__init__()
        mid = round(cin * expansion)
        self.layers = nn.Sequential(
            conv_norm_lrelu(cin, mid, k=1), conv_norm_lrelu(mid, mid, groups=mid),
            nn.Conv2d(mid, cout, 1, bias=False), nn.GroupNorm(1, cout, affine=True))


class AnimeGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.block_a = nn.Sequential(conv_norm_lrelu(3, 32, k=7), conv_norm_lrelu(32, 64, stride=2),
                                     conv_norm_lrelu(64, 64))
        self.block_b = nn.Sequential(conv_norm_lrelu(64, 128, stride=2), conv_norm_lrelu(128, 128))
        self.block_c = nn.Sequential(conv_norm_lrelu(128, 128), InvertedResBlock(128, 256),
                                     InvertedResBlock(256, 256), InvertedResBlock(256, 256),
                                     InvertedResBlock(256, 256), conv_norm_lrelu(256, 128))
        self.block_d = nn.Sequential(conv_norm_lrelu(128, 128), conv_norm_lrelu(128, 128))
        self.block_e = nn.Sequential(conv_norm_lrelu(128, 64), conv_norm_lrelu(64, 64),
                                     conv_norm_lrelu(64, 32, k=7))
        self.out_layer = nn.Sequential(nn.Conv2d(32, 3, 1, bias=False), nn.Tanh())


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    facts = {}
    for name, net in (("johnson", TransformerNet()), ("cyclegan", ResnetGenerator()),
                      ("animeganv2", AnimeGenerator())):
        sd = net.state_dict()
        path = os.path.join(out, name + ".pth")
        torch.save(sd, path)
        facts[name] = {k: list(v.shape) for k, v in sd.items()}
    with open(os.path.join(out, "style_nets.json"), "w", encoding="utf-8") as f:
        json.dump(facts, f)


if __name__ == "__main__":
    main()
