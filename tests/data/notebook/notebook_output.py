#!/usr/bin/python3
"""The seed notebook's execution cell, verbatim in substance, printing what it prints.

Regenerate the fixture the demo is compared with:
    /usr/bin/python3 tests/data/notebook/notebook_output.py > tests/data/notebook/notebook_output.txt
"""
from notebook import backward_prop, forward_prop, update_parameters, execution

X, Y, parameters = execution()
print("Intial parameters - ", parameters)
learning_rate = 0.01
A3, forwardpass_predictions = forward_prop(X, parameters)
gradients = backward_prop(X, Y, parameters, forwardpass_predictions)
updated_parameters = update_parameters(parameters, gradients, learning_rate)
print("Output after one forward pass:", A3)
print("Updated parameters after 1st pass - ", updated_parameters)
