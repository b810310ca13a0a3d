# Instruction templates of InstructBLIP (Dai et al., 2023, arXiv 2305.06500v2, appendix Table 5:
# the templates used to turn the held-in datasets into instruction data), '{}' standing for the
# question (VQA) or the answer (question generation); <Image> (the soft prompts) precedes each.
# The paper appends "OCR tokens: ..." to the instruction for the scene-text sets (not done here).
# One template is drawn per training sample; evaluation uses `eval_prompt` (below) where the
# config sets it, else the first template.
caption = [
    'A short image caption:',
    'A short image description:',
    'A photo of',
    'An image that shows',
    'Write a short description for the image.',
    'Write a description for the photo.',
    'Provide a description of what is presented in the photo.',
    'Briefly describe the content of the image.',
    'Can you briefly explain what you see in the image?',
    'Could you use a few words to describe what you perceive in the photo?',
    'Please provide a short depiction of the picture.',
    'Using language, provide a short account of the image.',
    'Use a few words to illustrate what is happening in the picture.',
]
vqa = [
    '{}',
    'Question: {}',
    '{} A short answer to the question is',
    'Q: {} A:',
    'Question: {} Short answer:',
    'Given the image, answer the following question with no more than three words. {}',
    'Based on the image, respond to this question with a short answer: {}. Answer:',
    'Use the provided image to answer the question: {} Provide your answer as short as possible:',
    'What is the answer to the following question? "{}"',
    'The question "{}" can be answered using the image. A short answer is',
]
# visual question generation from an answer ('{}' = the answer)
vqg = [
    'Given the image, generate a question whose answer is: {}. Question:',
    'Based on the image, provide a question with the answer: {}. Question:',
    'Given the visual representation, create a question for which the answer is "{}".',
    'From the image provided, craft a question that leads to the reply: {}. Question:',
    'Considering the picture, come up with a question where the answer is: {}.',
    'Taking the image into account, generate an question that has the answer: {}. Question:',
]
# zero-shot evaluation prompts of LAVIS's released InstructBLIP configs
# (lavis/projects/instructblip/caption_coco_*_eval_*.yaml, qa_okvqa_*_eval.yaml)
eval_caption = 'A short image caption.'
eval_vqa = 'Question: {} Short Answer:'
