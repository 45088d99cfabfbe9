"""What customers and agents tell the assistant and the helpdesk, turned into improvements:
conversations to review and label for the NLU, unanswered questions, and how well knowledge-base
answers and reply templates work."""
