"""What the networks see: labelled images (bundled, CIFAR-10, image folders, synthetic) and the image
size.
"""
